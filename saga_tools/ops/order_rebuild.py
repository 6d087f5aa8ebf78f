"""`saga rebuild order`: the order service's state rebuilt from the topics, then compared with the live one.

Side effects are off by construction: the rebuild calls the same `advance` the service uses, but nothing
it emits is written to an outbox (those events are already on the topic), no relay runs and no other
service is called. The whole rebuild is one transaction on the target database: a dry run rolls it back,
leaving the target as it was; a real run commits it and leaves a database the service could run on
(its inbox holds every replayed input, so the service would not apply them again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.config import Service
from common.db import create_engine
from common.events.codec import EventDecodeError, decode_event
from common.events.envelope import Envelope
from common.kafka_security import KafkaTarget
from common.messaging.inbox import claim_event
from order import models
from order.handlers import INPUT_OF, advance
from order.replay_order import RecordedEvent, saga_steps
from order.saga import Outcome
from saga_tools.ops.diff import TableDiff, diff_tables
from saga_tools.ops.topic_reader import TailStart, read_topic

# Compared with the live database; times (created, updated, deadline) differ by nature in a rebuild.
COMPARED_COLUMNS = (
    "status",
    "payment_id",
    "customer_id",
    "amount_minor",
    "currency",
    "lines",
    "cancel_reason",
    "cancellation",
)


class TargetNotEmpty(Exception):
    """The database to rebuild into already holds orders."""


@dataclass
class RebuildReport:
    events_read: int = 0
    undecodable: int = 0
    duplicates: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {outcome.value: 0 for outcome in Outcome})
    diff: TableDiff = field(default_factory=TableDiff)
    committed: bool = False


async def read_recorded(kafka: KafkaTarget, report: RebuildReport) -> list[RecordedEvent]:
    """Every decodable event of the three topics as they stand now (undecodable ones are counted)."""
    recorded = []
    for topic in (Service.PAYMENT.value, Service.DELIVERY.value, Service.ORDER.value):
        async for record in read_topic(kafka, topic, TailStart(from_beginning=True), follow=False):
            report.events_read += 1
            try:
                envelope = decode_event(record.value, topic=topic).envelope
            except EventDecodeError:
                # The live service parked it; a rebuild cannot apply it either.
                report.undecodable += 1
                continue
            recorded.append(
                RecordedEvent(
                    topic=topic,
                    type=envelope.type,
                    order_id=envelope.order_id,
                    occurred_at=envelope.occurred_at,
                    reason=envelope.payload.get("reason"),
                    ref=envelope,
                )
            )
    return recorded


async def rebuild_order(
    kafka: KafkaTarget, target_url: str, live_url: str, *, deadline: timedelta, dry_run: bool
) -> RebuildReport:
    """Rebuild into `target_url` (already migrated unless `dry_run`) and diff it against `live_url`."""
    report = RebuildReport()
    steps = saga_steps(await read_recorded(kafka, report), INPUT_OF)
    live_rows = await _load_orders(live_url)
    target = create_engine(target_url, pool_size=1)
    try:
        async with target.connect() as conn:
            transaction = await conn.begin()
            if dry_run:
                # DDL is transactional in PostgreSQL: the rollback below takes these tables away again.
                await conn.run_sync(models.metadata.create_all)
            if await conn.scalar(select(func.count()).select_from(models.orders)):
                await transaction.rollback()
                raise TargetNotEmpty("the target database already holds orders; rebuild into an empty one")
            for step in steps:
                await _apply(conn, step.event.ref, step.saga_input, deadline, report)
            report.diff = diff_tables(live_rows, await _orders_by_id(conn), COMPARED_COLUMNS)
            if dry_run:
                await transaction.rollback()
            else:
                await transaction.commit()
                report.committed = True
    finally:
        await target.dispose()
    return report


async def _apply(
    conn: AsyncConnection, envelope: Any, saga_input: Any, deadline: timedelta, report: RebuildReport
) -> None:
    assert isinstance(envelope, Envelope)
    if saga_input is None:
        if not await claim_event(conn, models.messaging.inbox, Service.ORDER.value, envelope):
            report.duplicates += 1  # the same event twice on the topic (a producer retry); applied once
            return
        advanced = await advance(
            conn, envelope.order_id, INPUT_OF[envelope.type], cause=envelope, deadline=deadline
        )
    else:
        advanced = await advance(
            conn,
            envelope.order_id,
            saga_input,
            detail=f"rebuilt from {envelope.type} {envelope.event_id} ({envelope.payload.get('reason')})",
        )
    report.outcomes[advanced.decision.outcome.value] += 1


async def _load_orders(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            has_orders = await conn.run_sync(lambda sync: inspect(sync).has_table(models.orders.name))
            return await _orders_by_id(conn) if has_orders else {}
    finally:
        await engine.dispose()


async def _orders_by_id(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(select(models.orders))
    return {row.order_id: dict(row._mapping) for row in rows}
