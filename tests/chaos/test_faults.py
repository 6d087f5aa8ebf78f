"""The fault suite: a steady stream of sagas while one fault at a time is injected.

After each fault, once the system is quiet, the invariant checker must find nothing: every accepted
checkout terminal, money and stock conserved, no effect doubled, outboxes empty, consumer lag zero.
CI runs a few dozen sagas per fault; the long run is in RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from common.config import Service
from saga_tools.ops.diff import TableDiff
from saga_tools.ops.order_rebuild import rebuild_order
from tests.chaos.harness import (
    EXPECTED,
    RATE,
    SAGAS,
    ChaosStack,
    ShopLoad,
    chaos_stack,
    every,
    produce_raw,
    rewind_group,
    settle,
    sleep_while,
)
from tests.invariants import consumer_lag
from tests.keys import shop_keys, suite_headers


def test_services_killed_at_random_moments_lose_and_double_nothing_and_keep_two_shops_apart(
    tmp_path: Path,
) -> None:
    """Two shops check out at once (half the load each) while services are killed; besides the
    platform's books, each shop's balance on their own and each shop sees its orders and no other's."""
    with chaos_stack(tmp_path) as chaos:
        loads = [
            ShopLoad(chaos, SAGAS // 2, seed=7 + index, shop=shop, shop_key=key, rate=RATE / 2)
            for index, (shop, key) in enumerate(shop_keys().items())
        ]
        for load in loads:
            load.start()
        rng = random.Random(3)

        def kill_one() -> None:
            worker = chaos.workers[rng.choice(list(Service))][0]
            worker.kill()
            chaos.revive(worker)

        kills = every(1.5, lambda: any(load.running for load in loads), kill_one)
        result = settle(chaos, loads, "sigkill-services-two-shops", kills)
        for load in loads:  # as each shop reads its orders: all of its own, none of the other's
            listed = httpx.get(
                f"{chaos.url(Service.ORDER)}/orders",
                params={"limit": 500},
                headers=load.shop_headers,
                timeout=10,
            ).json()
            assert listed["total"] == len(load.accepted), (load.shop, listed["total"])
            assert {item["owner"] for item in listed["items"]} == {load.shop}, load.shop
            assert {item["order_id"] for item in listed["items"]} == {s.order_id for s in load.accepted}
    assert result.faults >= 1


def test_the_broker_killed_and_restarted_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with chaos_stack(tmp_path) as chaos:
        load = ShopLoad(chaos)
        load.start()
        kafka = chaos.stack.kafka
        assert kafka is not None

        def bounce_broker() -> None:
            kafka.kill(0)
            time.sleep(2)
            kafka.restart(0)

        bounces = every(4, lambda: load.running, bounce_broker)
        settle(chaos, load, "sigkill-broker", bounces)


# A long fault: CI keeps the README's three-broker mode losing a broker for good
# (tests/e2e/test_three_broker_mode.py), which covers the same loss on the stack an operator starts.
@pytest.mark.long_fault
def test_one_of_three_brokers_lost_for_good_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with chaos_stack(tmp_path, kafka_nodes=3) as chaos:
        load = ShopLoad(chaos)
        load.start()
        kafka = chaos.stack.kafka
        assert kafka is not None
        time.sleep(2)
        kafka.kill(1)
        settle(chaos, load, "broker-lost-of-three", 1)


# A long fault: CI keeps the database killed for 10 s, frozen for 15 s and out of disk (this file and
# test_disk_faults.py), which cut every connection too; this one repeats a restart or a cut every 3 s.
@pytest.mark.long_fault
def test_postgres_restarted_and_connections_cut_while_events_flow(tmp_path: Path) -> None:
    with chaos_stack(tmp_path) as chaos:
        load = ShopLoad(chaos)
        load.start()
        postgres = chaos.stack.postgres
        assert postgres is not None
        faults = 0

        def outage() -> None:
            nonlocal faults
            if faults % 2 == 0:
                postgres.stop()
                time.sleep(2)
                postgres.restart()
            else:
                with psycopg.connect(postgres.admin_conninfo(), autocommit=True) as conn:
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE pid <> pg_backend_pid() AND datname IN ('payment', 'order', 'delivery')"
                    )
            faults += 1

        every(3, lambda: load.running, outage)
        settle(chaos, load, "postgres-outage", faults)


def test_postgres_killed_for_ten_seconds_the_checkout_answers_503_until_it_is_back(tmp_path: Path) -> None:
    """The database crashes (SIGKILL: crash recovery on restart) under load, and is back 10 s later; again
    every 25 s while the load lasts (once in CI's short run, CHAOS_SAGAS=300 for the long one). During
    each outage the checkout answers 503 with Retry-After at once: never a 500, never a hang past the
    client's timeout. After it, checkouts are accepted again by the same processes (no service exits or
    is restarted), and every saga ends as if nothing had happened."""
    with chaos_stack(tmp_path) as chaos:
        load = ShopLoad(chaos)
        load.start()
        postgres = chaos.stack.postgres
        assert postgres is not None
        outages: list[dict[str, Any]] = []
        time.sleep(3)  # sagas in every step when it dies
        while load.running or not outages:
            killed = time.monotonic()
            postgres.kill()  # returns once the server and every backend are gone
            down = time.monotonic()
            time.sleep(5)
            readiness = {service.value: chaos.readiness(service) for service in Service}
            time.sleep(5)
            restarted = time.monotonic()
            postgres.restart()  # returns once it accepts connections again (crash recovery done)
            ready = time.monotonic()
            outages.append(
                {"killed": killed, "down": down, "restarted": restarted, "ready": ready, "readyz": readiness}
            )
            # Until the next outage, if the load still runs; once it is over (CI's short run: during the
            # first outage's catch-up) no outage follows, and sleeping out the 12 s waited for nothing.
            sleep_while(12, lambda: load.running)
        load.wait()
        exited = [w.name for workers in chaos.workers.values() for w in workers if not w.running]
        result = settle(chaos, load, "postgres-killed", len(outages))
        for outage in outages:
            # A checkout committed just before the kill may be answered just after it (202): counted are
            # those sent once the server was gone.
            outage["during"] = load.checkouts_sent_and_answered_between(outage["down"], outage["restarted"])
            back = load.first_checkout_accepted_after(outage["ready"])
            outage["back_after_ready"] = None if back is None else back - outage["ready"]
        recoveries = sorted((o["ready"] - o["restarted"]) + (o["back_after_ready"] or 0) for o in outages)
        server_up = [round(o["ready"] - o["restarted"], 1) for o in outages]
        accepted = [o["back_after_ready"] and round(o["back_after_ready"], 2) for o in outages]
        print(
            f"FAULT postgres-killed: {len(outages)} outage(s) of 10 s; checkout during them"
            f" {[dict(o['during']) for o in outages]}; server up after {server_up} s, a checkout"
            f" accepted {accepted} s later; from the restart to a checkout accepted: p50"
            f" {recoveries[len(recoveries) // 2]:.1f} s, max {recoveries[-1]:.1f} s; every answer"
            f" {dict(load.statuses)}; {len(load.accepted)} sagas, quiet {result.recovery_seconds:.1f} s"
            " after the load"
        )
        print(f"/readyz during the first outage: {outages[0]['readyz']}")
        for outage in outages:
            assert set(outage["during"]) == {503}, outage  # it answered, and only "come back later"
            for service, (status, checks) in outage["readyz"].items():  # each names the cause
                assert status == 503 and checks["database"] != "ok", (service, status, checks)
            assert outage["back_after_ready"] is not None, outage  # accepted again, by the same processes
        assert load.statuses[500] == 0 and load.unavailable_without_retry_after == 0 and load.hung == 0
        assert not exited, exited


def test_postgres_frozen_for_fifteen_seconds_the_checkout_answers_within_the_clients_timeout(
    tmp_path: Path,
) -> None:
    """The database stops answering without closing anything (SIGSTOP on the server and its backends:
    a paused VM, or packets dropped on the way): connections stay open, statements wait. The checkout
    must not wait with them past the shop's timeout (10 s here): it answers 503 with Retry-After, and once
    the server answers again every saga ends as if nothing had happened."""
    with chaos_stack(tmp_path) as chaos:
        load = ShopLoad(chaos)
        load.start()
        postgres = chaos.stack.postgres
        assert postgres is not None and postgres.pid is not None
        time.sleep(3)
        frozen = time.monotonic()
        server = _server_processes(postgres.pid)  # the backends are their own process groups
        _signal_all(server, signal.SIGSTOP)
        try:
            time.sleep(15)
        finally:
            _signal_all(_server_processes(postgres.pid), signal.SIGCONT)
        thawed = time.monotonic()
        during = load.checkouts_between(frozen, thawed)
        load.wait()
        result = settle(chaos, load, "postgres-frozen", 1)
        back = load.first_checkout_accepted_after(thawed)
        print(
            f"FAULT postgres-frozen: checkout during the freeze {dict(during)}; hung {load.hung};"
            f" accepted {None if back is None else round(back - thawed, 2)} s after the thaw;"
            f" every answer {dict(load.statuses)}; quiet {result.recovery_seconds:.1f} s after the load"
        )
        assert load.hung == 0 and load.statuses[500] == 0 and load.unavailable_without_retry_after == 0
        assert set(during) <= {503, 202} and during[503] > 0, during


def _server_processes(postmaster: int) -> list[int]:
    """The postmaster and every process it forked (each backend calls setsid: a signal to the
    postmaster's process group does not reach them)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
    return [postmaster, *children]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


# A long fault: CI keeps a replay and a rewind with Kafka's own tool causing no second effect on a
# running platform (tests/e2e/test_operator_cli.py); this one rewinds every group to the start.
@pytest.mark.long_fault
def test_rewound_consumer_groups_reprocess_everything_without_a_second_effect(tmp_path: Path) -> None:
    with chaos_stack(tmp_path) as chaos:
        load = ShopLoad(chaos)
        load.start()
        load.wait()
        settle(chaos, load, "baseline-before-rewind", 0)
        outboxes_before = _counts(chaos, "outbox")
        applied_before = sum(_counts(chaos, "processed_events").values())
        duplicates_before = chaos.duplicates_seen()

        replayed = 0
        for service in Service:
            for worker in chaos.workers[service]:
                worker.stop()
            replayed += asyncio.run(rewind_group(chaos.bootstrap, service))
        assert all(asyncio.run(consumer_lag(chaos.bootstrap)).values())  # the checker sees the rewind
        chaos.revive_all()
        result = settle(chaos, load, "rewind-offsets", replayed)

        # Every event a consumer had applied came back once and was recognised; nothing new was emitted.
        assert result.duplicates - duplicates_before == applied_before
        assert _counts(chaos, "outbox") == outboxes_before
        assert sum(_counts(chaos, "processed_events").values()) == applied_before


def _counts(chaos: ChaosStack, table: str) -> dict[str, int]:
    counts = {}
    for service, url in chaos.database_urls.items():
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        counts[service] = int(row[0]) if row else 0
    return counts


def test_poison_messages_are_parked_with_reasons_and_later_events_of_that_order_wait(tmp_path: Path) -> None:
    with chaos_stack(tmp_path) as chaos:
        load = ShopLoad(chaos)
        load.start()
        stuck = f"poisoned-{uuid.uuid4().hex[:6]}"
        future = {
            "event_id": str(uuid.uuid4()),
            "type": "OrderCancelled",
            "version": 99,
            "order_id": stuck,
            "occurred_at": "2026-01-01T00:00:00Z",
            "producer": "order",
            "payload": {},
        }
        follow_up = {
            **future,
            "event_id": str(uuid.uuid4()),
            "version": 1,
            "payload": {
                "payment_id": str(uuid.uuid4()),
                "reason": "customer",
                "amount": {"amount_minor": 1, "currency": "EUR"},
            },
        }
        poison = [
            ("payment", b"garbage-1", b"\x00\xff not json"),
            ("order", b"garbage-2", b'{"type": "OrderPlaced"}'),
            (
                "delivery",
                b"garbage-3",
                json.dumps({**future, "type": "TeleportedParcel", "version": 1}).encode(),
            ),
            ("order", stuck.encode(), json.dumps(future).encode()),
            ("order", stuck.encode(), json.dumps(follow_up).encode()),
        ]
        asyncio.run(produce_raw(chaos.bootstrap, poison))
        result = settle(chaos, load, "poison-messages", len(poison))

        parked_as = f"legacy:{stuck}"  # the events name no owner: read as written before owners existed
        for service in (Service.PAYMENT, Service.DELIVERY):  # both read the `order` topic
            letters = [d for d in chaos.dead_letters(service) if d["order_id"] == parked_as]
            first, behind = letters
            assert "newer than the supported" in first["error"] and first["blocked_by"] is None
            assert behind["blocked_by"] == first["id"] and "waiting behind" in behind["error"]
        assert any("not JSON" in d["error"] for d in chaos.dead_letters(Service.ORDER))
        assert any("invalid envelope" in d["error"] for d in chaos.dead_letters(Service.PAYMENT))
        assert any("unknown event type" in d["error"] for d in chaos.dead_letters(Service.ORDER))

        # The operator gives up on the unreadable event; the one behind it can then be retried and applies.
        url = chaos.url(Service.PAYMENT)
        letters = [d for d in chaos.dead_letters(Service.PAYMENT) if d["order_id"] == parked_as]
        operator = httpx.Client(headers=suite_headers())
        assert operator.post(f"{url}/dead-letters/{letters[1]['id']}/retry").status_code == 409  # behind
        assert operator.post(f"{url}/dead-letters/{letters[0]['id']}/discard").status_code == 200
        retried = operator.post(f"{url}/dead-letters/{letters[1]['id']}/retry")
        assert retried.status_code == 200 and retried.json()["results"][0]["outcome"] == "applied"
    assert result.lost == 0


def test_a_worker_killed_while_a_second_runs_hands_over_its_partitions(tmp_path: Path) -> None:
    two = {Service.PAYMENT: 2, Service.ORDER: 2, Service.DELIVERY: 2}
    with chaos_stack(tmp_path, workers=two) as chaos:
        load = ShopLoad(chaos)
        load.start()
        time.sleep(3)
        for service in Service:
            chaos.workers[service][1].kill()  # for good: the first worker must take its partitions over
        chaos.workers = {service: workers[:1] for service, workers in chaos.workers.items()}
        settle(chaos, load, "rebalance-worker-killed", 3)


# A long fault (about 85 s: each hang waits out the provider's timeout): CI keeps the provider refusing
# past the attempt limit (the next test), and the refund worker's retries are integration-tested.
@pytest.mark.long_fault
def test_a_failing_and_hanging_provider_delays_refunds_but_each_happens_once(tmp_path: Path) -> None:
    env = {"PAYMENT_REFUND_MAX_ATTEMPTS": "100"}
    with chaos_stack(tmp_path, external_provider=True, extra_env=env) as chaos:
        load = ShopLoad(chaos)
        load.start()
        modes = iter(["hang", "error", "refuse", "ok"])

        def misbehave() -> None:
            chaos.provider_control(refunds=next(modes, "ok"))

        switches = every(2, lambda: load.running, misbehave)
        chaos.provider_control(refunds="ok")
        result = settle(chaos, load, "provider-failing-refunds", switches)

        state = chaos.provider_state()
        with psycopg.connect(
            chaos.database_urls["payment"].replace("postgresql+psycopg://", "postgresql://")
        ) as conn:
            refunds = conn.execute("SELECT refund_id::text, status FROM refunds").fetchall()
        assert all(status == "SUCCEEDED" for _, status in refunds)
        assert sorted(state["refunds"]) == sorted(refund_id for refund_id, _ in refunds)  # one each, no more
    assert result.lost == 0


def test_a_refund_refused_past_the_limit_is_visible_and_an_operator_can_retry_it(tmp_path: Path) -> None:
    env = {"PAYMENT_REFUND_MAX_ATTEMPTS": "2"}
    with chaos_stack(tmp_path, external_provider=True, extra_env=env) as chaos:
        chaos.provider_control(refunds="refuse")
        load = ShopLoad(chaos, sagas=1)
        load.stock()
        with httpx.Client(timeout=10, headers=suite_headers()) as http:
            body = {
                "customer_id": "c",
                "currency": "EUR",
                "payment_method": "tok_visa",
                "shipping_address": {
                    "name": "A",
                    "line1": "L",
                    "city": "C",
                    "postal_code": "1",
                    "country": "DE",
                },
                "lines": [{"sku": load.none, "quantity": 1, "unit_price_minor": 500}],
            }
            order_id = http.post(
                f"{chaos.url(Service.PAYMENT)}/checkout",
                json=body,
                headers={"Idempotency-Key": uuid.uuid4().hex},
            ).json()["order_id"]
            order_url = f"{chaos.url(Service.ORDER)}/orders/{order_id}"
            _wait(lambda: http.get(order_url).json().get("status") == "REFUND_FAILED")
            payment = http.get(f"{chaos.url(Service.PAYMENT)}/payments/{order_id}").json()
            assert payment["status"] == "REFUND_FAILED" and payment["refund"]["attempts"] == 2
            assert "refused" in payment["refund"]["last_error"]

            chaos.provider_control(refunds="ok")
            assert (
                http.post(f"{chaos.url(Service.PAYMENT)}/payments/{order_id}/refund/retry").status_code == 202
            )
            _wait(lambda: http.get(order_url).json().get("status") == "REFUNDED")
            assert (
                http.post(f"{chaos.url(Service.PAYMENT)}/payments/{order_id}/refund/retry").status_code == 409
            )
        assert len(chaos.provider_state()["refunds"]) == 1


def _wait(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_delivery_answers_delayed_past_shipping_never_refund_a_parcel_that_shipped(tmp_path: Path) -> None:
    """The fault that found the pivot bug: delivery's events to order held back (the broker, or the order
    service, paused for seconds) while parcels ship, customers cancel around shipping time and delivery
    deadlines expire. The order's copy of the shipment is stale; only delivery may decide a cancel, so no
    parcel that shipped is ever refunded, and a cancel sent before the order service saw the order is
    honoured (never a 404)."""
    env = {"DELIVERY_AUTO_PROGRESS_SECONDS": "0.5", "ORDER_DELIVERY_DEADLINE_SECONDS": "2"}
    with chaos_stack(tmp_path, extra_env=env) as chaos:
        kinds = {"happy": 45, "out_of_stock": 10, "cancel": 45}
        load = ShopLoad(chaos, sagas=max(SAGAS, 90), kinds=kinds, cancel_after=(0.0, 2.0))
        load.start()
        kafka = chaos.stack.kafka
        assert kafka is not None
        order_worker = chaos.workers[Service.ORDER][0]
        pauses = 0

        def stall() -> None:
            # Mostly the broker (everyone's events wait), sometimes the order service alone.
            nonlocal pauses
            paused: tuple[Callable[[], None], Callable[[], None]] = (
                (order_worker.pause, order_worker.resume)
                if pauses % 3 == 2
                else (lambda: kafka.pause(0), lambda: kafka.resume(0))
            )
            paused[0]()
            try:
                time.sleep(4)
            finally:
                paused[1]()
            pauses += 1

        every(1.5, lambda: load.running, stall)
        # A stall longer than the deadline makes the order ask delivery to cancel (timeout); delivery
        # confirms if the parcel has not left yet, so a happy saga may end refunded, never both.
        expected = {**EXPECTED, "happy": {"COMPLETED", "REFUNDED"}}
        result = settle(chaos, load, "delivery-answers-delayed", pauses, expected=expected)
        assert result.shipped_and_refunded == 0
        assert load.cancels[202] > 0  # customers did cancel, many while the order service was behind
        # Refused, confirmed, early and crossed cancels all rebuild exactly from the topics.
        diff = _rebuild_order_dry_run(chaos)
        assert diff.clean and diff.same == len(load.accepted), diff


def _rebuild_order_dry_run(chaos: ChaosStack) -> TableDiff:
    postgres = chaos.stack.postgres
    assert postgres is not None
    with psycopg.connect(postgres.admin_conninfo(), autocommit=True) as admin:
        admin.execute('CREATE DATABASE order_rebuild OWNER "order"')
    target = chaos.database_urls["order"].replace("@/order?", "@/order_rebuild?")
    report = asyncio.run(
        rebuild_order(
            chaos.bootstrap,
            target,
            chaos.database_urls["order"],
            deadline=timedelta(seconds=chaos.settings.delivery_deadline_seconds),
            dry_run=True,
        )
    )
    return report.diff
