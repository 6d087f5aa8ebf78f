"""The messaging core on a real PostgreSQL (and Kafka for the relay): inbox, dead letters, runner, relay.

Each test gets a fresh schema in the order database with the order migrations applied, so it shares
nothing with other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from common.errors import Invalid
from common.events import DecodedEvent, Envelope, encode_event, new_envelope
from common.events.delivery import Delivered, Shipped
from common.kafka import new_idempotent_producer, publish_in_order
from common.messaging import relay as relay_module
from common.messaging.dead_letters import RawMessage
from common.messaging.outbox import enqueue
from common.messaging.relay import OutboxRelay, OutgoingMessage
from common.messaging.runner import Effects, EventRunner, MessageOutcome
from order.models import messaging as tables
from tests.integration.schemas import Db, order_schema


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with order_schema(database_urls["order"]) as schema:
        yield schema


def _message(envelope: Envelope, offset: int = 0, topic: str = "delivery") -> RawMessage:
    return RawMessage(
        topic=topic, partition=0, offset=offset, key=envelope.order_id.encode(), value=encode_event(envelope)
    )


def _shipped(order_id: str) -> Envelope:
    return new_envelope(Shipped(tracking_code="T"), order_id=order_id, producer="delivery")


class RecordingHandler:
    """Applies an event by emitting one OrderCompleted-free marker event, and remembers what it saw."""

    def __init__(self, fail_for: set[str] | None = None) -> None:
        self.seen: list[str] = []
        self.fail_for = fail_for or set()

    async def __call__(self, conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
        await conn.execute(text("SELECT 1"))
        if event.order_id in self.fail_for:
            raise Invalid(f"cannot apply {event.type} to {event.order_id}")
        self.seen.append(f"{event.order_id}:{event.type}")
        return [
            new_envelope(
                Delivered(), order_id=event.order_id, producer="test", causation_id=event.envelope.event_id
            )
        ]


def _runner(db: Db, handler: RecordingHandler) -> EventRunner:
    return EventRunner(
        consumer="test",
        engine=db.engine,
        tables=tables,
        handlers={"Shipped": handler, "Delivered": handler},
        emit_topic="order",
    )


async def _count(db: Db, query: str) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(text(query)) or 0)


async def test_a_redelivered_event_is_applied_once(db: Db) -> None:
    handler = RecordingHandler()
    runner = _runner(db, handler)
    message = _message(_shipped("acme:o-1"))

    outcomes = [await runner.process(message), await runner.process(message)]

    assert outcomes == [MessageOutcome.APPLIED, MessageOutcome.DUPLICATE]
    assert handler.seen == ["acme:o-1:Shipped"]
    assert await _count(db, "SELECT count(*) FROM outbox") == 1
    assert await _count(db, "SELECT count(*) FROM processed_events") == 1
    assert runner.stats.duplicate == 1
    assert await _count(db, "SELECT duplicates FROM consumer_counters WHERE consumer = 'test'") == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x00\x01garbage", "undecodable: not JSON"),
        (b'{"event_id": "x"}', "undecodable: invalid envelope"),
    ],
)
async def test_an_undecodable_message_is_parked_with_its_reason_and_raw_bytes(
    db: Db, value: bytes, reason: str
) -> None:
    runner = _runner(db, RecordingHandler())
    message = RawMessage(topic="delivery", partition=2, offset=41, key=b"acme:o-9", value=value)

    assert await runner.process(message) is MessageOutcome.PARKED

    async with db.engine.connect() as conn:
        row = (await conn.execute(select(tables.dead_letters))).one()
    assert row.error.startswith(reason)
    assert (row.topic, row.partition, row.offset, row.order_id, row.value) == (
        "delivery",
        2,
        41,
        "acme:o-9",
        value,
    )


async def test_a_rejected_event_parks_and_rolls_back_everything_it_wrote(db: Db) -> None:
    runner = _runner(db, RecordingHandler(fail_for={"acme:o-bad"}))

    assert await runner.process(_message(_shipped("acme:o-bad"))) is MessageOutcome.PARKED

    assert await _count(db, "SELECT count(*) FROM outbox") == 0
    assert await _count(db, "SELECT count(*) FROM processed_events") == 0
    async with db.engine.connect() as conn:
        error = await conn.scalar(select(tables.dead_letters.c.error))
    assert error == "rejected: cannot apply Shipped to acme:o-bad"


async def test_later_events_of_a_parked_order_wait_behind_it_while_other_orders_flow(db: Db) -> None:
    handler = RecordingHandler(fail_for={"acme:o-stuck"})
    runner = _runner(db, handler)
    stuck_first, stuck_later = (
        _shipped("acme:o-stuck"),
        new_envelope(Delivered(), order_id="acme:o-stuck", producer="delivery"),
    )
    other = _shipped("acme:o-fine")

    outcomes = [
        await runner.process(_message(stuck_first, 0)),
        await runner.process(_message(stuck_later, 1)),
        await runner.process(_message(other, 2)),
    ]

    assert outcomes == [MessageOutcome.PARKED, MessageOutcome.PARKED_BEHIND, MessageOutcome.APPLIED]
    assert handler.seen == ["acme:o-fine:Shipped"]
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(tables.dead_letters).order_by(tables.dead_letters.c.id))).all()
    assert [r.blocked_by for r in rows] == [None, rows[0].id]

    # The operator fixes the cause and retries the first letter: it and the one behind it apply, in order.
    handler.fail_for.clear()
    results = await runner.retry_dead_letter(rows[0].id)

    assert [outcome for _, outcome in results] == [MessageOutcome.APPLIED, MessageOutcome.APPLIED]
    assert handler.seen == ["acme:o-fine:Shipped", "acme:o-stuck:Shipped", "acme:o-stuck:Delivered"]
    async with db.engine.connect() as conn:
        statuses = (
            await conn.scalars(select(tables.dead_letters.c.status).order_by(tables.dead_letters.c.id))
        ).all()
    assert statuses == ["retried", "retried"]
    # New events of that order flow again.
    assert await runner.process(_message(_shipped("acme:o-stuck"), 3)) is MessageOutcome.APPLIED


async def test_a_letter_behind_another_cannot_be_retried_first(db: Db) -> None:
    runner = _runner(db, RecordingHandler(fail_for={"acme:o-x"}))
    await runner.process(_message(_shipped("acme:o-x"), 0))
    await runner.process(_message(_shipped("acme:o-x"), 1))
    async with db.engine.connect() as conn:
        second = await conn.scalar(select(func.max(tables.dead_letters.c.id)))

    from common.messaging.runner import DeadLetterNotRetryable

    with pytest.raises(DeadLetterNotRetryable, match="waits behind"):
        await runner.retry_dead_letter(int(second or 0))


async def test_the_relay_is_woken_by_commits_that_emitted_and_workers_by_every_commit_that_applied(
    db: Db,
) -> None:
    async def emits_for_the_first_order(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
        if event.order_id != "acme:o-1":
            return []
        return [new_envelope(Delivered(), order_id=event.order_id, producer="test")]

    signals: list[str] = []
    runner = EventRunner(
        consumer="test",
        engine=db.engine,
        tables=tables,
        handlers={"Shipped": emits_for_the_first_order},
        emit_topic="order",
        on_emitted=lambda: signals.append("emitted"),
        on_commit=lambda: signals.append("commit"),
    )
    first = _message(_shipped("acme:o-1"))

    await runner.process(first)  # applied and emitted: both
    await runner.process(first)  # a duplicate changes nothing: neither
    await runner.process(_message(_shipped("acme:o-2")))  # applied, nothing to publish: workers only
    await runner.process_batch([_message(_shipped("acme:o-3")), _message(_shipped("acme:o-4"), offset=1)])

    assert signals == ["emitted", "commit", "commit", "commit"]


def _marking_runner(db: Db, *, batched: bool = False, committed: list[str] | None = None) -> EventRunner:
    """A runner whose handler hands back a write (a counter named after the order, set to how many such
    counters it saw) and an event: Effects that the runner saves. `batched`: with a batch handler too,
    whose writes for the whole batch the runner saves at once. `committed` collects the orders whose
    effects' `committed` callbacks ran."""
    done = committed if committed is not None else []

    async def mark(conn: AsyncConnection, event: DecodedEvent) -> Effects:
        seen = await conn.scalar(text("SELECT count(*) FROM consumer_counters WHERE consumer LIKE 'mark:%'"))
        if event.order_id == "acme:o-bad":
            seen = None  # breaks the counters' NOT NULL: the write fails as the runner saves it
        write = pg.Statement(
            "INSERT INTO consumer_counters (consumer, duplicates) VALUES (%s, %s)",
            (f"mark:{event.order_id}", seen),
        )
        return Effects(
            events=[new_envelope(Delivered(), order_id=event.order_id, producer="t")],
            writes=[write],
            committed=[lambda: done.append(event.order_id)],
        )

    async def mark_all(conn: AsyncConnection, events: Sequence[DecodedEvent]) -> Effects:
        each = [await mark(conn, event) for event in events]
        return Effects(
            events=[e for effects in each for e in effects.events],
            writes=[w for effects in each for w in effects.writes],
            committed=[c for effects in each for c in effects.committed],
        )

    return EventRunner(
        consumer="test",
        engine=db.engine,
        tables=tables,
        handlers={"Shipped": mark},
        emit_topic="o",
        batch_handler=mark_all if batched else None,
    )


async def _marks(db: Db) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT consumer, duplicates FROM consumer_counters WHERE consumer LIKE 'mark:%'")
        )
        return {consumer.removeprefix("mark:acme:"): int(count) for consumer, count in rows}


async def test_a_handlers_writes_commit_with_its_events_and_the_next_handler_of_a_batch_reads_them(
    db: Db,
) -> None:
    committed: list[str] = []
    runner = _marking_runner(db, committed=committed)

    await runner.process_batch([_message(_shipped("acme:o-1")), _message(_shipped("acme:o-2"), offset=1)])
    await runner.process(_message(_shipped("acme:o-3"), offset=2))

    assert await _marks(db) == {"o-1": 0, "o-2": 1, "o-3": 2}
    assert await _outbox_causes(db) == ["acme:o-1", "acme:o-2", "acme:o-3"]
    assert committed == ["acme:o-1", "acme:o-2", "acme:o-3"]


async def test_a_handler_whose_writes_fail_is_parked_with_none_of_its_events(db: Db) -> None:
    committed: list[str] = []
    runner = _marking_runner(db, committed=committed)

    assert await runner.process(_message(_shipped("acme:o-bad"))) is MessageOutcome.PARKED
    assert committed == []

    assert await _marks(db) == {}
    assert await _outbox_causes(db) == []
    assert await _count(db, "SELECT count(*) FROM processed_events") == 0


@pytest.mark.parametrize("batched", [False, True], ids=["handler-by-handler", "batch-handler"])
async def test_a_batch_whose_writes_fail_is_applied_one_at_a_time_and_only_the_failing_event_parks(
    db: Db, batched: bool
) -> None:
    committed: list[str] = []
    runner = _marking_runner(db, batched=batched, committed=committed)

    outcomes = await runner.process_batch(
        [_message(_shipped("acme:o-1")), _message(_shipped("acme:o-bad"), offset=1)]
    )

    assert outcomes == [MessageOutcome.APPLIED, MessageOutcome.PARKED]
    assert await _marks(db) == {"o-1": 0}
    assert await _outbox_causes(db) == ["acme:o-1"]
    # o-1's batch was rolled back before it was applied on its own: what counts it ran once, after that.
    assert committed == ["acme:o-1"]


async def test_an_event_type_the_service_does_not_handle_is_skipped_without_effects(db: Db) -> None:
    runner = EventRunner(consumer="test", engine=db.engine, tables=tables, handlers={}, emit_topic="order")
    assert await runner.process(_message(_shipped("acme:o-2"))) is MessageOutcome.NOT_SUBSCRIBED
    assert await _count(db, "SELECT count(*) FROM dead_letters") == 0


async def _outbox_causes(db: Db) -> list[str]:
    """The order ids of the outbox rows, in the order the relay will publish them."""
    async with db.engine.connect() as conn:
        return list((await conn.scalars(select(tables.outbox.c.key).order_by(tables.outbox.c.id))).all())


async def test_a_batch_applies_each_event_once_in_order_in_one_go(db: Db) -> None:
    handler = RecordingHandler()
    runner = _runner(db, handler)
    first, second = _shipped("acme:o-a"), _shipped("acme:o-b")
    already_applied = _shipped("acme:o-c")
    await runner.process(_message(already_applied, 0))
    batch = [
        _message(first, 1),
        _message(second, 2),
        _message(already_applied, 3),  # redelivered after an earlier batch
        _message(first, 4),  # the same event twice in one batch
        _message(new_envelope(Delivered(), order_id="acme:o-a", producer="delivery"), 5),
    ]

    outcomes = await runner.process_batch(batch)

    assert outcomes == [
        MessageOutcome.APPLIED,
        MessageOutcome.APPLIED,
        MessageOutcome.DUPLICATE,
        MessageOutcome.DUPLICATE,
        MessageOutcome.APPLIED,
    ]
    assert handler.seen == ["acme:o-c:Shipped", "acme:o-a:Shipped", "acme:o-b:Shipped", "acme:o-a:Delivered"]
    assert await _outbox_causes(db) == ["acme:o-c", "acme:o-a", "acme:o-b", "acme:o-a"]
    assert await _count(db, "SELECT count(*) FROM processed_events") == 4
    assert await _count(db, "SELECT duplicates FROM consumer_counters WHERE consumer = 'test'") == 2
    assert (runner.stats.applied, runner.stats.duplicate) == (4, 2)
    assert (runner.stats.batches, runner.stats.batched_events) == (1, 5)


async def test_a_batch_with_a_poison_event_parks_it_and_applies_the_rest_in_order(db: Db) -> None:
    handler = RecordingHandler(fail_for={"acme:o-bad"})
    runner = _runner(db, handler)
    garbage = RawMessage(topic="delivery", partition=0, offset=2, key=b"acme:o-junk", value=b"\x00junk")
    batch = [
        _message(_shipped("acme:o-1"), 0),
        _message(_shipped("acme:o-bad"), 1),
        garbage,
        _message(new_envelope(Delivered(), order_id="acme:o-bad", producer="delivery"), 3),
        _message(_shipped("acme:o-2"), 4),
    ]

    outcomes = await runner.process_batch(batch)

    assert outcomes == [
        MessageOutcome.APPLIED,
        MessageOutcome.PARKED,
        MessageOutcome.PARKED,
        MessageOutcome.PARKED_BEHIND,
        MessageOutcome.APPLIED,
    ]
    assert handler.seen == ["acme:o-1:Shipped", "acme:o-2:Shipped"]
    assert await _outbox_causes(db) == ["acme:o-1", "acme:o-2"]
    assert await _count(db, "SELECT count(*) FROM processed_events") == 2
    assert await _count(db, "SELECT count(*) FROM dead_letters WHERE status = 'parked'") == 3


async def test_a_batch_whose_handler_fails_midway_is_rolled_back_whole_before_the_retry_one_by_one(
    db: Db,
) -> None:
    handler = RecordingHandler(fail_for={"acme:o-bad"})
    runner = _runner(db, handler)

    outcomes = await runner.process_batch(
        [
            _message(_shipped("acme:o-1"), 0),
            _message(_shipped("acme:o-bad"), 1),
            _message(_shipped("acme:o-2"), 2),
        ]
    )

    assert outcomes == [MessageOutcome.APPLIED, MessageOutcome.PARKED, MessageOutcome.APPLIED]
    # o-1 ran in the batch transaction, which the failure rolled back, then again on its own.
    assert handler.seen == ["acme:o-1:Shipped", "acme:o-1:Shipped", "acme:o-2:Shipped"]
    assert await _outbox_causes(db) == ["acme:o-1", "acme:o-2"]
    assert await _count(db, "SELECT count(*) FROM processed_events") == 2


async def test_a_batch_holds_back_the_events_of_an_order_with_a_parked_letter(db: Db) -> None:
    handler = RecordingHandler(fail_for={"acme:o-stuck"})
    runner = _runner(db, handler)
    assert await runner.process(_message(_shipped("acme:o-stuck"), 0)) is MessageOutcome.PARKED
    handler.fail_for.clear()  # fixed, but the parked letter has not been retried yet

    outcomes = await runner.process_batch(
        [
            _message(new_envelope(Delivered(), order_id="acme:o-stuck", producer="delivery"), 1),
            _message(_shipped("acme:o-free"), 2),
        ]
    )

    assert outcomes == [MessageOutcome.PARKED_BEHIND, MessageOutcome.APPLIED]
    assert handler.seen == ["acme:o-free:Shipped"]


async def test_a_batch_of_events_the_service_does_not_handle_touches_nothing(db: Db) -> None:
    runner = EventRunner(consumer="test", engine=db.engine, tables=tables, handlers={}, emit_topic="order")
    batch = [_message(_shipped("acme:o-3"), 0), _message(_shipped("acme:o-4"), 1)]
    assert await runner.process_batch(batch) == [MessageOutcome.NOT_SUBSCRIBED] * 2
    assert await _count(db, "SELECT count(*) FROM processed_events") == 0
    assert runner.stats.not_subscribed == 2


async def _relay(db: Db, bootstrap: str) -> tuple[OutboxRelay, object]:
    producer = new_idempotent_producer(bootstrap)
    await producer.start()

    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        await publish_in_order(producer, messages)

    relay = OutboxRelay(
        engine=db.engine, outbox=tables.outbox, publish=publish, lock_id=hash(db.schema) & 0x7FFFFFFF
    )
    return relay, producer


async def _create_topic(bootstrap: str, prefix: str) -> str:
    topic = f"{prefix}-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def _read_topic(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: list[tuple[bytes, bytes]] = []
    try:
        while len(seen) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            for records in batch.values():
                seen.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return seen


async def test_the_relay_publishes_committed_rows_in_order_and_marks_them(
    db: Db, kafka_bootstrap: str
) -> None:
    topic = await _create_topic(kafka_bootstrap, "relay")
    envelopes = [
        new_envelope(Shipped(tracking_code=str(i)), order_id="acme:o-r", producer="t") for i in range(5)
    ]
    async with db.engine.begin() as conn:
        await enqueue(conn, tables.outbox, topic, envelopes)
    relay, producer = await _relay(db, kafka_bootstrap)
    try:
        assert await relay.publish_pending() == 5
        assert await relay.publish_pending() == 0
    finally:
        await relay.close()
        await producer.stop()  # type: ignore[attr-defined]

    published = await _read_topic(kafka_bootstrap, topic, 5)
    assert [value for _, value in published] == [encode_event(e) for e in envelopes]
    assert await relay.pending_count() == 0


async def test_a_row_that_commits_late_with_a_lower_id_is_still_published(
    db: Db, kafka_bootstrap: str
) -> None:
    topic = await _create_topic(kafka_bootstrap, "late")
    early, late = _shipped("acme:o-early"), _shipped("acme:o-late")
    relay, producer = await _relay(db, kafka_bootstrap)
    try:
        async with db.engine.connect() as slow:
            transaction = await slow.begin()
            await enqueue(slow, tables.outbox, topic, [late])  # takes the lower id, commits last
            async with db.engine.begin() as fast:
                await enqueue(fast, tables.outbox, topic, [early])
            assert await relay.publish_pending() == 1
            await transaction.commit()
        assert await relay.publish_pending() == 1
    finally:
        await relay.close()
        await producer.stop()  # type: ignore[attr-defined]
    published = await _read_topic(kafka_bootstrap, topic, 2)
    assert sorted(key for key, _ in published) == [b"acme:o-early", b"acme:o-late"]


async def _published_after_created(db: Db) -> dict[str, float | None]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT key, extract(epoch FROM published_at - created_at) FROM outbox ORDER BY id")
        )
        return {key: None if age is None else float(age) for key, age in rows}


async def test_a_pass_marks_what_the_previous_one_published_with_the_time_the_broker_acknowledged_it(
    db: Db,
) -> None:
    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        pass

    relay = OutboxRelay(engine=db.engine, outbox=tables.outbox, publish=publish, lock_id=4245)
    try:
        async with db.engine.begin() as conn:
            await enqueue(conn, tables.outbox, "order", [_shipped("acme:o-m1")])
        assert await relay.publish_pending() == 1
        assert await _published_after_created(db) == {"acme:o-m1": None}  # acknowledged, not yet marked
        assert await relay.pending_count() == 0  # but not this relay's backlog: it published it

        await asyncio.sleep(1.0)  # the mark comes a second after the broker's acknowledgement
        async with db.engine.begin() as conn:
            await enqueue(conn, tables.outbox, "order", [_shipped("acme:o-m2")])
        assert await relay.publish_pending() == 1  # marks o-m1 in its read, and publishes o-m2 only
        ages = await _published_after_created(db)
        assert ages["acme:o-m2"] is None
        assert ages["acme:o-m1"] is not None and ages["acme:o-m1"] < 0.5
    finally:
        await relay.close()


async def _run_relay_publishing_one(
    db: Db, lock_id: int, mark_within: float
) -> tuple[OutboxRelay, asyncio.Task[None]]:
    """A relay running as a service runs it (no sweep for 30 s), woken for one row it then publishes."""

    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        pass

    relay = OutboxRelay(
        engine=db.engine,
        outbox=tables.outbox,
        publish=publish,
        lock_id=lock_id,
        sweep_seconds=30,
        mark_within=mark_within,
    )
    running = asyncio.create_task(relay.run_forever())
    for _ in range(100):  # its first pass found nothing: it waits for a wake
        if relay.leading:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    async with db.engine.begin() as conn:
        await enqueue(conn, tables.outbox, "order", [_shipped("acme:o-run")])
    relay.wake()
    for _ in range(100):
        if relay.published_total == 1:
            break
        await asyncio.sleep(0.02)
    assert relay.published_total == 1
    return relay, running


async def test_a_running_relay_marks_what_it_published_within_mark_within_without_another_commit(
    db: Db,
) -> None:
    _, running = await _run_relay_publishing_one(db, 4246, mark_within=0.2)
    try:
        await asyncio.sleep(1.0)
        assert (await _published_after_created(db))["acme:o-run"] is not None
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_relay_that_stops_marks_what_it_published_first(db: Db) -> None:
    relay, running = await _run_relay_publishing_one(db, 4247, mark_within=30)
    await asyncio.sleep(0.3)
    assert (await _published_after_created(db))["acme:o-run"] is None  # the mark waits for a pass
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert (await _published_after_created(db))["acme:o-run"] is not None
    assert not relay.leading


async def test_one_relay_of_a_service_leads_and_another_takes_over_when_its_connection_dies(db: Db) -> None:
    """The new leader publishes what the dead one had not marked yet (its last pass) again, and the rest."""
    published: dict[str, list[str]] = {"first": [], "second": []}

    def relay(name: str) -> OutboxRelay:
        async def publish(messages: Sequence[OutgoingMessage]) -> None:
            published[name].extend(message.key for message in messages)

        return OutboxRelay(engine=db.engine, outbox=tables.outbox, publish=publish, lock_id=4242)

    async def write(order_id: str) -> None:
        async with db.engine.begin() as conn:
            await enqueue(conn, tables.outbox, "order", [_shipped(order_id)])

    first, second = relay("first"), relay("second")
    try:
        await write("acme:o-1")
        assert await first.publish_pending() == 1  # first pass: it takes the lead
        await write("acme:o-2")
        assert await second.publish_pending() == 0  # rows are pending, but the first relay leads
        assert await first.publish_pending() == 1

        # The leader's process dies: PostgreSQL ends its session, and the lock goes with it.
        async with db.engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND objid = 4242 AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        await write("acme:o-3")
        for _ in range(50):  # the session ends asynchronously
            if await second.publish_pending() == 2:  # o-2, published but not marked, and o-3
                break
            await asyncio.sleep(0.1)
        with pytest.raises(Exception):  # noqa: B017 - whichever error a dead connection raises
            await first.publish_pending()
        await write("acme:o-4")
        assert await first.publish_pending() == 0  # it reconnected as a standby
        assert await second.publish_pending() == 1
    finally:
        await first.close()
        await second.close()

    assert published == {"first": ["acme:o-1", "acme:o-2"], "second": ["acme:o-2", "acme:o-3", "acme:o-4"]}


async def test_the_oldest_unpublished_rows_age_grows_until_the_relay_publishes_it(db: Db) -> None:
    published: list[OutgoingMessage] = []

    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        published.extend(messages)

    relay = OutboxRelay(engine=db.engine, outbox=tables.outbox, publish=publish, lock_id=4244)
    try:
        assert await relay.oldest_pending_seconds() == 0
        async with db.engine.begin() as conn:
            await enqueue(conn, tables.outbox, "order", [_shipped("acme:o-age")])
        await asyncio.sleep(1.1)
        assert 1.0 <= await relay.oldest_pending_seconds() < 30
        assert await relay.publish_pending() == 1
        assert await relay.oldest_pending_seconds() == 0
    finally:
        await relay.close()


async def test_a_relay_publishes_nothing_while_another_session_holds_the_services_lock(db: Db) -> None:
    published: list[OutgoingMessage] = []

    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        published.extend(messages)

    relay = OutboxRelay(engine=db.engine, outbox=tables.outbox, publish=publish, lock_id=4243)
    async with db.engine.begin() as conn:
        await enqueue(conn, tables.outbox, "order", [_shipped("acme:o-lock")])

    try:
        async with db.engine.connect() as other_relay:
            transaction = await other_relay.begin()
            assert await other_relay.scalar(select(func.pg_try_advisory_xact_lock(4243)))
            assert await relay.publish_pending() == 0
            await transaction.rollback()

        assert published == []
        assert await relay.publish_pending() == 1
        assert [message.key for message in published] == ["acme:o-lock"]
    finally:
        await relay.close()


async def test_rows_stay_in_the_outbox_while_the_broker_refuses_them(db: Db) -> None:
    async def broker_down(messages: Sequence[OutgoingMessage]) -> None:
        raise ConnectionError("broker unreachable")

    relay = OutboxRelay(engine=db.engine, outbox=tables.outbox, publish=broker_down, lock_id=7)
    async with db.engine.begin() as conn:
        await enqueue(conn, tables.outbox, "order", [_shipped("acme:o-down")])

    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    assert await relay.pending_count() == 1
    assert not relay.leading  # it gave the lead up: a standby may try the broker


async def test_a_leader_gone_silent_loses_the_lock_and_one_waiting_on_the_broker_keeps_it(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader cut off from the database leaves a session the server cannot tell from a live one: the
    server ends it once silent for `_LEADER_SILENT_SECONDS`, so a standby leads. A live leader waiting
    on a slow broker pings meanwhile and keeps the lead."""
    monkeypatch.setattr(relay_module, "_LEADER_SILENT_SECONDS", 1.0)

    async def slow_broker(messages: Sequence[OutgoingMessage]) -> None:
        await asyncio.sleep(2.5)

    def relay() -> OutboxRelay:
        return OutboxRelay(
            engine=db.engine, outbox=tables.outbox, publish=slow_broker, lock_id=hash(db.schema) & 0x7FFFFFFF
        )

    leader, standby = relay(), relay()
    try:
        async with db.engine.begin() as conn:
            await enqueue(conn, tables.outbox, "silent", [_shipped("acme:o-s1")])
        assert await leader.publish_pending() == 1  # 2.5 s on the broker, silent for no more than 1 s
        assert leader.leading
        assert await standby.publish_pending() == 0  # the leader still holds the lock
        await asyncio.sleep(2)  # the leader says nothing, as one cut off would
        async with db.engine.begin() as conn:
            await enqueue(conn, tables.outbox, "silent", [_shipped("acme:o-s2")])
        assert await standby.publish_pending() == 2  # o-s1 again (never marked) and o-s2
        assert standby.leading
    finally:
        await leader.close()
        await standby.close()


async def _plan_cache_mode(conn: AsyncConnection) -> str:
    return str(await conn.scalar(text("SELECT current_setting('plan_cache_mode')")))


async def test_the_runners_transaction_plans_generically_and_its_connection_returns_with_the_default(
    db: Db,
) -> None:
    modes: list[str] = []

    async def handler(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
        modes.append(await _plan_cache_mode(conn))
        return []

    runner = EventRunner(
        consumer="test", engine=db.engine, tables=tables, handlers={"Shipped": handler}, emit_topic="order"
    )
    assert await runner.process(_message(_shipped("acme:o-1"))) == MessageOutcome.APPLIED
    assert await runner.process_batch(
        [_message(_shipped("acme:o-2"), 1), _message(_shipped("acme:o-3"), 2)]
    ) == [MessageOutcome.APPLIED, MessageOutcome.APPLIED]

    assert modes == ["force_generic_plan"] * 3
    async with db.engine.connect() as conn:  # the connection the runner used, back from the pool
        assert await _plan_cache_mode(conn) == "auto"


async def test_the_leading_relays_session_plans_generically_and_a_standbys_keeps_the_default(db: Db) -> None:
    async def publish(messages: Sequence[OutgoingMessage]) -> None:
        pass

    leader = OutboxRelay(engine=db.engine, outbox=tables.outbox, publish=publish, lock_id=4343)
    standby = OutboxRelay(engine=db.engine, outbox=tables.outbox, publish=publish, lock_id=4343)
    try:
        await leader.publish_pending()
        await standby.publish_pending()
        assert leader.leading and not standby.leading
        assert leader._leader is not None
        assert await _plan_cache_mode(leader._leader) == "force_generic_plan"
        async with db.engine.connect() as conn:  # the standby's connection went back to the pool
            assert await _plan_cache_mode(conn) == "auto"
    finally:
        await leader.close()
        await standby.close()
