"""The bench's webhook side: its receiver process, the shop's subscription, and the end of each step.

After each step (with or without an endpoint, so the two configurations' CPU windows end alike) the bench
waits until order has recorded the end of every saga it saw finish; then, with an endpoint and outside
the CPU window, until the receiver has every event the order database holds for the step's orders
(`shop_events`), or the drain runs out. Then it takes the step's webhook figures
(`bench.stats.webhook_figures`), and from the order database how soon the sender picked each event up
once it could be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.loadgen import Tracker
from bench.receiver import RECORDS_PATH
from bench.stats import TERMINAL_EVENT_TYPES, Arrival, percentiles_ms, webhook_figures
from common.service_apis import bearer
from common.tenancy import saga_id
from saga_tools.local_stack.ports import free_port

# Between looks while waiting for a step's end: order's records usually lag its terminal events by a
# few ms, and this wait is in the CPU window; the webhooks' wait is not, and it mostly waits for stragglers.
_RECORDED_POLL_SECONDS = 0.1
_WEBHOOKS_POLL_SECONDS = 0.5


class Receiver:
    """`python -m bench.receiver` on a free port, for as long as the `running_receiver` block lasts."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/hooks"
        self.records_url = f"http://127.0.0.1:{port}{RECORDS_PATH}"

    @property
    def pid(self) -> int:
        return self.process.pid

    async def take(self, http: httpx.AsyncClient) -> list[Arrival]:
        """What arrived since the last call (the receiver forgets it once answered)."""
        response = await http.get(self.records_url)
        response.raise_for_status()
        return [
            Arrival(
                received_at=r["received_at"],
                event_id=r["id"],
                type=r["type"],
                sequence=r["sequence"],
                order_id=r["order_id"],
                occurred_at=r["occurred_at"],
                attempt=r["attempt"],
            )
            for r in response.json()["records"]
        ]


@contextmanager
def running_receiver(log_dir: Path, niceness: int) -> Iterator[Receiver]:
    """The receiver as a process of its own, `niceness` added to this one's: it stands in for the shop's
    machine, so it runs ahead of the platform as the generator does (bench.__main__.generator_first),
    and webhook latency does not include its waits for a core. Without the privilege it runs as it is."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.receiver", str(port)],
        stdout=subprocess.PIPE,
        stderr=(log_dir / "receiver.log").open("w"),
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", f"the webhook receiver did not start (see {log_dir}/receiver.log)"
        with contextlib.suppress(PermissionError):  # as the generator: then it shares the cores equally
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
        yield Receiver(process, port)
    finally:
        process.terminate()
        process.wait(10)


def subscribe(order_url: str, shop_key: str, url: str) -> dict[str, Any]:
    """Register `url` for every event type of the shop's orders, through the order service's API as a
    shop does; returns the endpoint (201: with its id and secret)."""
    response = httpx.post(
        f"{order_url}/webhooks",
        json={"url": url, "description": "bench receiver"},
        headers=bearer(shop_key),
        timeout=10,
    )
    if response.status_code != 201:
        raise RuntimeError(
            f"registering the bench's webhook endpoint: {response.status_code} {response.text}"
        )
    return dict(response.json())


_COUNTS = "SELECT count(*), count(*) FILTER (WHERE type = ANY(%s)) FROM shop_events WHERE order_id = ANY(%s)"

# Per event of the step's orders sent to the endpoint: from when it could be sent — written, and its
# order's previous event acknowledged — to its first attempt's start (the sender's datetime.now()
# before the POST). `delivered_at` is the settling transaction's now(), just after the receiver
# answered. The first attempts are looked up from the step's first event on (the `at` index).
_PICKUP = """
WITH events AS (
    SELECT event_id, order_id, seq, occurred_at FROM shop_events WHERE order_id = ANY(%(orders)s)
), first_attempts AS (
    SELECT t.event_id, min(t.at) AS at FROM webhook_attempts t
    WHERE t.endpoint_id = %(endpoint)s AND t.at >= (SELECT min(occurred_at) FROM events)
    GROUP BY t.event_id
)
SELECT extract(epoch FROM f.at - greatest(e.occurred_at, p.delivered_at))::float8
FROM events e
JOIN first_attempts f ON f.event_id = e.event_id
LEFT JOIN events pe ON pe.order_id = e.order_id AND pe.seq = e.seq - 1
LEFT JOIN webhook_deliveries p ON p.endpoint_id = %(endpoint)s AND p.event_id = pe.event_id
"""
# The sender looks for due deliveries at least this often (SenderSettings.poll_seconds) and is woken by
# every commit of order and every settle: an event picked up later than this waited for something else
# (the sender's slots all taken, a gated endpoint).
STALLED_AFTER_S = 1.0


@dataclass(frozen=True)
class Subscription:
    """The bench's endpoint: its receiver and its id at the order service."""

    receiver: Receiver
    endpoint_id: str


class StepEnd:
    """The end of each step, in two parts: `__call__` while the step's CPU is still counted, `webhooks`
    after. Both configurations count CPU up to the same point (order has recorded every saga's end);
    the wait for the last webhooks is left out, since it is mostly idle, and what the sender does for
    the events still in flight then is a fraction of a second of its work."""

    def __init__(
        self, order_conninfo: str, owner: str, subscription: Subscription | None, timeout: float
    ) -> None:
        self.order_conninfo = order_conninfo
        self.owner = owner
        self.subscription = subscription
        self.timeout = timeout
        self._saga_ids: list[str] = []
        self._orders: frozenset[str] = frozenset()

    async def __call__(self, tracker: Tracker) -> dict[str, Any]:
        """Done when order holds a terminal event (`shop_events`) for every saga the bench saw end, or
        after `timeout`; remembers the step's orders for `webhooks`."""
        self._orders = frozenset(tracker.accepted)
        self._saga_ids = [saga_id(self.owner, order_id) for order_id in self._orders]
        began = time.monotonic()
        async with await psycopg.AsyncConnection.connect(self.order_conninfo, autocommit=True) as db:
            while True:
                _, ended = await self._counts(db)
                if ended >= len(tracker.ended) or time.monotonic() - began > self.timeout:
                    break
                await asyncio.sleep(_RECORDED_POLL_SECONDS)
        return {"end_wait_s": round(time.monotonic() - began, 2)}

    @property
    def saga_ids(self) -> list[str]:
        """The saga ids of the step just ended."""
        return list(self._saga_ids)

    async def webhooks(self) -> dict[str, Any]:
        """The step's webhook figures (None without an endpoint), once the receiver has as many distinct
        events of the step's orders as order recorded for them, or after `timeout`. Arrivals of other
        orders (a warm-up's or an earlier step's late ones) are left out."""
        if self.subscription is None:
            return {"webhooks": None}
        arrivals: list[Arrival] = []
        distinct: set[str] = set()
        began = time.monotonic()
        async with (
            await psycopg.AsyncConnection.connect(self.order_conninfo, autocommit=True) as db,
            httpx.AsyncClient(timeout=30) as http,
        ):
            while True:
                expected, _ = await self._counts(db)
                new = [a for a in await self.subscription.receiver.take(http) if a.order_id in self._orders]
                arrivals += new
                distinct.update(a.event_id for a in new)
                if len(distinct) >= expected or time.monotonic() - began > self.timeout:
                    break
                await asyncio.sleep(_WEBHOOKS_POLL_SECONDS)
            waited = round(time.monotonic() - began, 2)
            cursor = await db.execute(
                _PICKUP, {"orders": self._saga_ids, "endpoint": self.subscription.endpoint_id}
            )
            pickups = [value for (value,) in await cursor.fetchall()]
        figures = asdict(webhook_figures(arrivals, expected))
        figures["pickup"] = asdict(percentiles_ms(pickups))
        figures["stalled"] = sum(1 for value in pickups if value > STALLED_AFTER_S)
        return {"webhooks": figures, "webhook_wait_s": waited}

    async def _counts(self, db: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
        """The step's orders' events in order's database, and how many of them end a saga."""
        cursor = await db.execute(_COUNTS, (list(TERMINAL_EVENT_TYPES), self._saga_ids))
        row = await cursor.fetchone()
        return (row[0], row[1]) if row is not None else (0, 0)
