"""Webhooks under faults, on the real stack: a receiver that answers 500 for 12 s, then holds its
answers past the platform's timeout, then answers late and in no order; the order service (the sender)
SIGKILLed while requests are in flight; the broker paused. Afterwards every status change of every
order reached the receiver, each order's events in sequence, duplicates only of the same event (same id,
same bytes), and every request's signature verifies.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from common.config import Service
from saga_client.testing.webhooks import SagaWebhooks
from tests.chaos.harness import ChaosStack, ShopLoad, chaos_stack, settle
from tests.keys import suite_headers

# The platform gives up on an answer after 2 s and waits at most 3 s between attempts here, so the
# faults' backlog drains within the test's time.
WEBHOOK_ENV = {"WEBHOOK_TIMEOUT_SECONDS": "2", "WEBHOOK_RETRY_CAP_SECONDS": "3"}


def _told(chaos: ChaosStack) -> dict[str, list[tuple[int, UUID, str]]]:
    """What the order service recorded to tell, per order (the shop's order id): (seq, event id, type)."""
    url = chaos.database_urls["order"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT order_id, seq, event_id, type FROM shop_events ORDER BY order_id, seq")
        told: dict[str, list[tuple[int, UUID, str]]] = defaultdict(list)
        for saga, seq, event_id, event_type in rows.fetchall():
            told[saga.split(":", 1)[1]].append((seq, event_id, event_type))
    return told


def _wait_until_nothing_pending(http: httpx.Client, hook: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while (pending := http.get(hook).json()["pending"]) != 0:
        assert time.monotonic() < deadline, f"{pending} events still pending after {timeout:.0f}s"
        time.sleep(0.5)


def _all_attempts(http: httpx.Client, hook: str) -> list[dict[str, Any]]:
    """Every attempt, newest first, page by page: the faults' failed attempts are the oldest, and how many
    attempts there are grows with the events a saga makes (one per carrier step)."""
    attempts: list[dict[str, Any]] = []
    params: dict[str, int] = {"limit": 500}
    while True:
        page = http.get(f"{hook}/attempts", params=params).json()
        attempts.extend(page["items"])
        if page["next_before"] is None:
            return attempts
        params = {"limit": 500, "before": page["next_before"]}


def test_a_failing_hanging_late_receiver_a_killed_sender_and_a_paused_broker_lose_no_event(
    tmp_path: Path,
) -> None:
    with chaos_stack(tmp_path, extra_env=WEBHOOK_ENV) as chaos, SagaWebhooks() as receiver:
        http = httpx.Client(timeout=15, headers=suite_headers())
        created = http.post(f"{chaos.url(Service.ORDER)}/webhooks", json={"url": receiver.url}).json()
        receiver.secrets.append(created["secret"])
        hook = f"{chaos.url(Service.ORDER)}/webhooks/{created['id']}"
        kafka = chaos.stack.kafka
        assert kafka is not None
        load = ShopLoad(chaos, sagas=120)  # 20 s of checkouts at 6/s: every phase below sees new events
        # Each phase lasts a few of the platform's 3 s retry caps (or 2 s timeouts): enough for every
        # pending event to be tried, and failed, several times in it. They were 30, 8, 4 and 8 s, mostly
        # after the load had ended; the same faults now come while it runs (~24 s less).
        receiver.fail(500)
        load.start()
        time.sleep(4)
        kafka.pause(0)  # the broker stalls while events flow and the receiver fails
        time.sleep(4)
        kafka.resume(0)
        time.sleep(4)  # 12 s of 500s in all: each event on hold by then tried ~4 times
        receiver.hang(4)  # past the 2 s timeout: every attempt in flight for seconds
        time.sleep(6)  # three 2 s timeouts of every attempt in flight
        [sender] = chaos.workers[Service.ORDER]
        sender.kill()  # mid-delivery: requests held by the receiver, their answers never read
        chaos.revive(sender)
        time.sleep(2)
        receiver.answer_late(1.5)  # 200s, each after its own wait: answers come back out of order
        time.sleep(6)  # four of the longest waits, with requests of the backlog in flight throughout
        receiver.answer_normally()
        settle(chaos, load, "webhooks-under-faults", 3)
        _wait_until_nothing_pending(http, hook)

        told = _told(chaos)
        assert sum(len(events) for events in told.values()) >= 4 * len(load.accepted) // 2
        for order_id, events in told.items():
            arrived = receiver.events_of(order_id)
            assert [(e.sequence, e.id, e.type) for e in arrived] == events, order_id
            receiver.assert_in_order(order_id)
        bodies: dict[str, set[bytes]] = defaultdict(set)
        for request in receiver.received():
            bodies[request.header("Saga-Event-Id") or ""].add(request.body)
        assert all(len(versions) == 1 for versions in bodies.values())  # a duplicate is the same event
        receiver.assert_all_verified()
        attempts = _all_attempts(http, hook)
        errors = {a["error"].split(":")[0] for a in attempts if a["error"]}
        print(
            f"\nFAULT webhooks: orders={len(told)} events={sum(map(len, told.values()))}"
            f" requests={len(receiver.received())} duplicates={len(receiver.duplicates())} errors={errors}"
        )
        # The faults did make attempts fail: answered 500, and not answered within the timeout.
        assert {"HTTP 500", "no answer within 2s"} <= errors, errors
        http.close()
