"""What the shops are told and how it is handed out, on a real PostgreSQL (order/webhooks/store.py,
endpoints.py): the saga's batch and its one-input path tell the same events with the same ids; an order's
next event is sent only once the one before it is acknowledged; a claim is a lease; an acknowledgement
crossing the next event's write holds nothing back; a failing endpoint is gated; a disabled endpoint
gets nothing new; another shop's endpoint nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common import pg
from order.handlers import advance, advance_many
from order.webhooks import endpoints, store
from order.webhooks.policy import RetryPolicy
from order.webhooks.sender import SenderSettings, WebhookSender
from tests.carrier_steps import CARRIER_STEPS, happy_webhooks
from tests.integration.schemas import Db, order_schema
from tests.integration.test_order_batches import STORIES, _interleaved, _story

LEASE = timedelta(seconds=30)
FIRST_STEP = CARRIER_STEPS[0]  # the carrier's first step: the event after order.scheduled


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with order_schema(database_urls["order"]) as schema:
        yield schema


async def _endpoint(db: Db, owner: str = "acme", **options: Any) -> Any:
    async with db.engine.begin() as conn:
        created, _secret = await endpoints.create(
            conn,
            owner=owner,
            url="http://127.0.0.1:1/hooks",
            event_types=options.get(
                "event_types",
                [*happy_webhooks(), "order.cancelled"],
            ),
            description=None,
            by=owner,
        )
    return created["id"]


async def _apply(db: Db, steps: list[Any]) -> None:
    async with db.engine.begin() as conn:
        await advance_many(conn, steps)


async def _claim(
    db: Db, limit: int = 100, lease: timedelta = LEASE, per_endpoint: int = 100
) -> list[store.Claimed]:
    async with db.engine.begin() as conn:
        return await store.claim(conn, limit, lease, per_endpoint=per_endpoint)


async def _settle(
    db: Db,
    claimed: list[store.Claimed],
    *,
    delivered: bool,
    retry_in: float = 60.0,
    endpoint_retry_in: float = 0.0,
) -> None:
    outcomes = [
        store.Outcome(
            c,
            datetime.now(UTC),
            200 if delivered else 500,
            1.0,
            None if delivered else "HTTP 500",
            delivered,
            0.0 if delivered else retry_in,
            0.0 if delivered else endpoint_retry_in,
        )
        for c in claimed
    ]
    async with db.engine.begin() as conn:
        await store.settle(conn, outcomes)


async def _told(db: Db) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        return await pg.fetch_all(
            conn, "SELECT order_id, seq, type, event_id FROM shop_events ORDER BY 1, 2", ()
        )


async def test_a_batch_tells_the_shops_exactly_what_applying_each_input_alone_tells(
    database_urls: dict[str, str],
) -> None:
    async with order_schema(database_urls["order"]) as batched, order_schema(database_urls["order"]) as alone:
        await _apply(batched, _interleaved(STORIES))
        for step in _interleaved(STORIES):
            async with alone.engine.begin() as conn:
                await advance(conn, step.order_id, step.saga_input, cause=step.cause, detail=step.detail)
        told = await _told(batched)
        assert told == await _told(alone)  # the same events, numbered alike, with the same ids
    happy = [(seq, kind) for order, seq, kind, _ in told if order == "acme:o-happy"]
    assert happy == list(enumerate(happy_webhooks(), start=1))  # placed, scheduled, …, completed


async def test_only_the_head_of_an_orders_events_is_due_and_its_acknowledgement_makes_the_next_due(
    db: Db,
) -> None:
    await _endpoint(db)
    await _apply(
        db, _story("acme:o-1", ["completed", "scheduled", FIRST_STEP]) + _story("acme:o-2", ["completed"])
    )

    first = await _claim(db)
    assert sorted((c.order_id, c.seq) for c in first) == [("acme:o-1", 1), ("acme:o-2", 1)]
    assert await _claim(db) == []  # leased; the rest wait behind their head

    await _settle(db, [c for c in first if c.order_id == "acme:o-1"], delivered=True)
    [second] = await _claim(db)
    assert (second.order_id, second.seq, second.event_type, second.attempt) == (
        "acme:o-1",
        2,
        "order.scheduled",
        1,
    )

    await _settle(db, [second], delivered=False, retry_in=0.0)
    [again] = await _claim(db)
    assert (again.event_id, again.attempt) == (second.event_id, 2)  # the same event, the next attempt


async def test_a_claim_is_a_lease_a_dead_sender_leaves_behind(db: Db) -> None:
    await _endpoint(db)
    await _apply(db, _story("acme:o-1", ["completed"]))

    [claimed] = await _claim(db, lease=timedelta(seconds=0.3))
    assert await _claim(db) == []
    await asyncio.sleep(0.4)  # the sender died: nothing was settled
    [retaken] = await _claim(db)
    assert (retaken.event_id, retaken.attempt) == (claimed.event_id, 2)


async def test_a_disabled_endpoint_is_sent_nothing_and_enabled_gets_its_pending_events_in_order(
    db: Db,
) -> None:
    endpoint = await _endpoint(db)
    await _apply(db, _story("acme:o-1", ["completed"]))
    async with db.engine.begin() as conn:
        await endpoints.set_enabled(conn, endpoint, None, enabled=False)
    await _apply(db, _story("acme:o-2", ["completed"]))  # while disabled: not queued for it
    assert await _claim(db) == []

    async with db.engine.begin() as conn:
        shown = await endpoints.set_enabled(conn, endpoint, None, enabled=True)
    assert shown is not None and shown["pending"] == 1
    assert [(c.order_id, c.seq) for c in await _claim(db)] == [("acme:o-1", 1)]


async def test_another_shops_endpoint_and_an_endpoint_of_other_types_get_nothing(db: Db) -> None:
    await _endpoint(db, owner="globex")
    await _endpoint(db, event_types=["order.refunded"])
    await _apply(db, _story("acme:o-1", ["completed", "scheduled"]))
    assert await _claim(db) == []


async def test_events_sent_again_since_a_time_go_out_in_sequence_ahead_of_what_was_pending(db: Db) -> None:
    endpoint = await _endpoint(db)
    await _apply(db, _story("acme:o-1", ["completed", "scheduled"]))
    await _settle(db, await _claim(db), delivered=True)
    await _settle(db, await _claim(db), delivered=True)
    await _apply(db, _story("acme:o-1", [FIRST_STEP]))
    [pending] = await _claim(db, lease=timedelta(seconds=0))
    assert pending.seq == 3

    async with db.engine.begin() as conn:
        queued = await endpoints.resend(
            conn, endpoint, event_id=None, since=datetime.now(UTC) - timedelta(hours=1)
        )
    assert queued == 3
    sent = []
    for _ in range(3):
        [head] = await _claim(db)
        sent.append(head.seq)
        await _settle(db, [head], delivered=True)
    assert sent == [1, 2, 3]


async def test_an_acknowledgement_crossing_the_next_event_of_its_order_holds_nothing_back(db: Db) -> None:
    await _endpoint(db)
    await _apply(db, _story("acme:o-1", ["completed"]))
    [placed] = await _claim(db)

    async with db.engine.connect() as saga:  # the saga writes the next event and has not committed
        transaction = await saga.begin()
        await advance_many(saga, _story("acme:o-1", ["completed", "scheduled"])[1:])
        await asyncio.wait_for(_settle(db, [placed], delivered=True), 5)  # never waits for the saga
        assert await _claim(db) == []  # not committed: nothing to send yet
        await transaction.commit()

    [scheduled] = await _claim(db)  # the next claim sees both commits
    assert (scheduled.seq, scheduled.event_type) == (2, "order.scheduled")


async def test_a_failing_endpoint_is_gated_to_a_probe_while_a_healthy_one_keeps_flowing(db: Db) -> None:
    failing = await _endpoint(db)
    healthy = await _endpoint(db)
    await _apply(db, [step for n in range(6) for step in _story(f"acme:o-{n}", ["completed"])])

    first = await _claim(db, per_endpoint=4)
    assert sorted(sum(c.endpoint_id == e for c in first) for e in (failing, healthy)) == [4, 4]
    outcomes = [c for c in first if c.endpoint_id == failing]
    await _settle(db, outcomes, delivered=False, retry_in=0.0, endpoint_retry_in=60.0)

    second = await _claim(db, per_endpoint=4)
    assert {c.endpoint_id for c in second} == {healthy}  # the failing one waits behind its gate
    async with db.engine.begin() as conn:
        await pg.execute(
            conn, "UPDATE webhook_endpoints SET next_attempt_at = now() WHERE id = %s", (failing,)
        )
    [probe] = await _claim(db, per_endpoint=4)
    assert probe.endpoint_id == failing and probe.endpoint_failures == 1  # one request: a probe


async def test_an_endpoint_failing_longer_than_the_policy_allows_is_disabled_with_the_reason(db: Db) -> None:
    long_failing = await _endpoint(db)
    briefly_failing = await _endpoint(db)
    async with db.engine.begin() as conn:
        await pg.execute(
            conn,
            "UPDATE webhook_endpoints SET failing_since = now() - %s * interval '1 hour',"
            " last_error = 'HTTP 503' WHERE id = %s",
            (4, long_failing),
        )
        await pg.execute(
            conn, "UPDATE webhook_endpoints SET failing_since = now() WHERE id = %s", (briefly_failing,)
        )
    policy = RetryPolicy(disable_after=timedelta(hours=3))
    await WebhookSender(db.engine, SenderSettings(policy=policy)).housekeep()

    async with db.engine.connect() as conn:
        rows = dict(await pg.fetch_all(conn, "SELECT id, disabled_reason FROM webhook_endpoints", ()))
    assert rows[briefly_failing] is None
    reason = rows[long_failing]
    assert reason is not None and reason.startswith("every attempt failed since ") and "HTTP 503" in reason
