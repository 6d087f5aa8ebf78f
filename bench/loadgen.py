"""Open-loop checkouts against the running platform, timed by the events on the topics (no polling).

Checkouts start on a fixed schedule whatever the platform's answers (open loop: a slow platform meets the
same arrivals and its backlog grows, as with real customers). A saga's latency is the time from its
`202 Accepted` to its terminal event, seen by a consumer of the `order` and `payment` topics in this
process: OrderCompleted (COMPLETED), PaymentRefunded (REFUNDED after a stock-out or a customer cancel),
PaymentFailed (REJECTED). Order records REJECTED and REFUNDED when it consumes those payment events, a
hop later; the figure is the saga's business outcome, not order's bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from aiokafka import AIOKafkaConsumer

from bench.stats import StepFigures, percentile, summarise
from common.tenancy import order_id_of
from saga_tools.ops.groups import topic_partitions

# How long the broker may hold the generator's fetch when there is nothing new. It answers a held fetch as
# soon as any partition in it has data, so the hold does not delay a terminal event; a short one (10 ms)
# only made the generator fetch a hundred times a second between events, CPU and broker work the measured
# services then competed for on this machine's two cores. The services' own consumers hold 1.5 s (Faust's).
FETCH_HOLD_MS = 1500

# The saga mix of the benchmark (issue #6): happy path, stock-out, declined card, customer cancel.
MIX = {"happy": 0.80, "out_of_stock": 0.10, "declined": 0.05, "cancel": 0.05}
TERMINAL = {"OrderCompleted": "COMPLETED", "PaymentRefunded": "REFUNDED", "PaymentFailed": "REJECTED"}
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}


@dataclass
class Tracker:
    """When each saga was accepted and when it ended (monotonic seconds)."""

    accepted: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # which kind of saga each one is
    outcomes: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    # Terminal events that arrived before the client had read the 202 (a declined card ends fast).
    early: dict[str, tuple[float, str]] = field(default_factory=dict)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    # Orders the order service has placed (seen as OrderPlaced): a customer can cancel only those.
    placed: dict[str, asyncio.Event] = field(default_factory=dict)
    # Checkouts sent, or waiting for a connection in the client, and not answered yet.
    unanswered: int = 0

    def placed_event(self, order_id: str) -> asyncio.Event:
        return self.placed.setdefault(order_id, asyncio.Event())

    def accept(self, order_id: str, kind: str = "happy") -> None:
        now = time.monotonic()
        self.accepted[order_id] = now
        self.kinds[order_id] = kind
        if order_id in self.early:
            _, outcome = self.early.pop(order_id)
            self._finish(order_id, outcome, now)

    def end(self, order_id: str, outcome: str, at: float) -> None:
        if order_id in self.ended:
            return
        if order_id not in self.accepted:
            self.early[order_id] = (at, outcome)
            return
        self._finish(order_id, outcome, at)

    def _finish(self, order_id: str, outcome: str, at: float) -> None:
        self.ended[order_id], self.outcomes[order_id] = at, outcome
        if len(self.ended) == len(self.accepted):
            self.drained.set()

    @contextlib.contextmanager
    def awaiting_answer(self) -> Iterator[None]:
        """A checkout on its way: waiting for a connection or sent, until it is answered (or fails)."""
        self.unanswered += 1
        try:
            yield
        finally:
            self.unanswered -= 1

    def in_flight(self) -> int:
        """The backlog: accepted sagas without their terminal event, and checkouts not answered yet (a
        platform that answers late is behind as much as one that finishes late)."""
        return self.unanswered + sum(1 for order_id in self.accepted if order_id not in self.ended)


async def events_from_now(bootstrap: str, topics: Sequence[str], ready: asyncio.Event) -> AsyncIterator[Any]:
    """The events written to `topics` from now on, each as (monotonic time it was read, decoded JSON)."""
    partitions = await topic_partitions(bootstrap, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=FETCH_HOLD_MS
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        for tp, end in (await consumer.end_offsets(partitions)).items():
            consumer.seek(tp, end)
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    yield now, json.loads(record.value)
    finally:
        await consumer.stop()


async def watch_terminal_events(
    bootstrap: str, topics: Sequence[str], tracker: Tracker, ready: asyncio.Event
) -> None:
    """Record each saga's terminal event time (and when its order was placed). The bench is one shop:
    its order ids are the events' saga ids without the owner."""
    async for now, event in events_from_now(bootstrap, topics, ready):
        order_id = order_id_of(event["order_id"])
        if event.get("type") == "OrderPlaced":
            tracker.placed_event(order_id).set()
        outcome = TERMINAL.get(event.get("type"))
        if outcome:
            tracker.end(order_id, outcome, now)


class Driver(Protocol):
    """Starts one saga of a kind and records its acceptance in the tracker."""

    mix: dict[str, float]
    terminal_topics: tuple[str, ...]

    async def start(self) -> None: ...

    async def saga(self, kind: str, tracker: Tracker) -> None: ...

    async def close(self) -> None: ...


class ShopClient:
    """The platform's driver: checkouts over HTTP, as an e-commerce backend sends them."""

    mix = MIX
    terminal_topics = ("order", "payment")

    def __init__(
        self, payment_url: str, order_url: str, plenty_sku: str, empty_sku: str, *, api_key: str
    ) -> None:
        # As a shop backend's client: a bounded pool, every connection kept alive (one closed after a
        # burst would be opened again by the next). With up to 400 (100 kept alive), a run past the
        # ceiling saw the generator's own CPU per saga more than double, taken from the platform it
        # measured. Checkouts waiting for a connection count in the backlog.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        self.http = httpx.AsyncClient(
            timeout=30,
            limits=limits,
            headers={"Authorization": f"Bearer {api_key}"},  # a shop's key
        )
        self.payment_url, self.order_url = payment_url, order_url
        self.plenty, self.empty = plenty_sku, empty_sku

    async def start(self) -> None:
        """Nothing to open: the HTTP client connects on first use."""

    async def close(self) -> None:
        await self.http.aclose()

    async def saga(self, kind: str, tracker: Tracker) -> None:
        body = {
            "customer_id": "bench",
            "currency": "EUR",
            "payment_method": "tok_declined" if kind == "declined" else "tok_visa",
            "lines": [
                {
                    "sku": self.empty if kind == "out_of_stock" else self.plenty,
                    "quantity": 1,
                    "unit_price_minor": 999,
                }
            ],
            "shipping_address": ADDRESS,
        }
        with tracker.awaiting_answer():
            response = await self.http.post(
                f"{self.payment_url}/checkout", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
        if response.status_code != 202:
            tracker.refused.append(f"checkout {response.status_code}: {response.text[:200]}")
            return
        order_id = response.json()["order_id"]
        tracker.accept(order_id, kind)
        if kind == "cancel":
            await self._cancel(order_id, tracker)

    async def _cancel(self, order_id: str, tracker: Tracker) -> None:
        """The customer cancels as soon as the order exists (its OrderPlaced is on the topic): one request,
        not a polling loop that would load the order service with 404s while it is behind."""
        try:
            await asyncio.wait_for(tracker.placed_event(order_id).wait(), 300)
        except TimeoutError:
            tracker.refused.append(f"order {order_id} was never placed")
            return
        response = await self.http.post(f"{self.order_url}/orders/{order_id}/cancel")
        if response.status_code not in (202, 409):  # 409: shipped already, the saga completes instead
            tracker.refused.append(f"cancel of {order_id}: {response.status_code} {response.text[:200]}")


def latency_by_kind(tracker: Tracker) -> dict[str, dict[str, float]]:
    """p50 and p99 (ms) of each kind of saga: a kind that takes more hops (a cancel: order, delivery,
    order, payment) fills the tail of the whole mix."""
    by_kind: dict[str, list[float]] = {}
    for order_id, ended in tracker.ended.items():
        by_kind.setdefault(tracker.kinds.get(order_id, "?"), []).append(ended - tracker.accepted[order_id])
    return {
        kind: {
            "n": len(values),
            "p50_ms": round(percentile(sorted(values), 0.50) * 1000, 1),
            "p99_ms": round(percentile(sorted(values), 0.99) * 1000, 1),
        }
        for kind, values in sorted(by_kind.items())
    }


async def run_step(
    client: Driver,
    bootstrap: str,
    rate: float,
    seconds: float,
    *,
    drain_seconds: float = 60.0,
    seed: int = 1,
    on_tick: Callable[[float, int, int], None] | None = None,
    at_end: Callable[[Tracker], Awaitable[dict[str, Any]]] | None = None,
) -> tuple[StepFigures, dict[str, Any]]:
    """Offer `rate` checkouts/s for `seconds`, wait for the stragglers, and summarise. `at_end` runs once
    the sagas are terminal (or the drain ran out), while the caller still counts the step's CPU; what it
    returns joins the step's details (the webhooks' wait and figures)."""
    tracker = Tracker()
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch_terminal_events(bootstrap, client.terminal_topics, tracker, ready))
    await ready.wait()
    rng = random.Random(seed)
    kinds = rng.choices(list(client.mix), weights=list(client.mix.values()), k=int(rate * seconds))
    started = time.monotonic()
    backlog: list[tuple[float, float]] = []
    tasks = []
    slip = 0.0
    for index, kind in enumerate(kinds):
        scheduled = started + index / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        slip = max(slip, time.monotonic() - scheduled)
        tasks.append(asyncio.create_task(client.saga(kind, tracker)))
        elapsed = time.monotonic() - started
        if not backlog or elapsed - backlog[-1][0] >= 1.0:
            backlog.append((elapsed, float(tracker.in_flight())))
            if on_tick is not None:
                on_tick(elapsed, len(tracker.accepted), len(tracker.ended))
    window_end = started + seconds
    await asyncio.gather(*tasks)
    if tracker.in_flight():
        tracker.drained.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tracker.drained.wait(), drain_seconds)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    ending = await at_end(tracker) if at_end is not None else {}
    latencies = [tracker.ended[o] - tracker.accepted[o] for o in tracker.ended]
    in_window = sum(1 for at in tracker.ended.values() if at <= window_end)
    figures = summarise(rate, seconds, latencies, len(tracker.accepted), backlog, in_window, slip)
    details = {
        "outcomes": {kind: list(tracker.outcomes.values()).count(kind) for kind in set(TERMINAL.values())},
        "latency_by_kind": latency_by_kind(tracker),
        "refused": tracker.refused[:5],
        "unfinished": tracker.in_flight(),
        "backlog": backlog,
        **ending,
    }
    return figures, details
