"""Dead letters: messages parked with their reason instead of being skipped or retried forever."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import Conflict, NotFound

PARKED = "parked"
RETRIED = "retried"
DISCARDED = "discarded"
STATUSES = (PARKED, RETRIED, DISCARDED)


@dataclass(frozen=True)
class RawMessage:
    """A message as Kafka delivered it, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    traceparent: str | None = None  # the Kafka header: the span that published it (common/tracing.py)

    @property
    def key_text(self) -> str | None:
        # Every message is keyed by order_id; a key that is not text still identifies the stream of events.
        return self.key.decode("utf-8", errors="replace") if self.key is not None else None


async def park(
    conn: AsyncConnection,
    table: Table,
    *,
    consumer: str,
    message: RawMessage,
    error: str,
    order_id: str | None,
    event_id: Any = None,
    event_type: str | None = None,
    blocked_by: int | None = None,
) -> int:
    dead_letter_id = await conn.scalar(
        insert(table)
        .values(
            consumer=consumer,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key_text,
            order_id=order_id,
            event_id=event_id,
            event_type=event_type,
            value=message.value,
            error=error,
            blocked_by=blocked_by,
        )
        .returning(table.c.id)
    )
    assert dead_letter_id is not None
    return int(dead_letter_id)


async def load(conn: AsyncConnection, table: Table, dead_letter_id: int, *, lock: bool = False) -> Any:
    query = select(table).where(table.c.id == dead_letter_id)
    if lock:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def mark(conn: AsyncConnection, table: Table, dead_letter_id: int, status: str) -> None:
    await conn.execute(
        update(table).where(table.c.id == dead_letter_id).values(status=status, resolved_at=func.now())
    )


async def record_failed_retry(conn: AsyncConnection, table: Table, dead_letter_id: int, error: str) -> None:
    await conn.execute(update(table).where(table.c.id == dead_letter_id).values(error=error))


async def parked_behind(conn: AsyncConnection, table: Table, consumer: str, order_id: str) -> list[int]:
    """Parked letters of one order, oldest first: the order in which they must be retried."""
    rows = await conn.execute(
        select(table.c.id)
        .where(table.c.consumer == consumer, table.c.order_id == order_id, table.c.status == PARKED)
        .order_by(table.c.id)
    )
    return [int(row.id) for row in rows]


async def listing(
    conn: AsyncConnection, table: Table, *, status: str | None, order_id: str | None, limit: int, offset: int
) -> list[Any]:
    """Dead letters in id order, of one status (None: all) and optionally one order."""
    query = select(table).order_by(table.c.id).limit(limit).offset(offset)
    if status is not None:
        query = query.where(table.c.status == status)
    if order_id is not None:
        query = query.where(table.c.order_id == order_id)
    return list((await conn.execute(query)).all())


async def discard(conn: AsyncConnection, table: Table, dead_letter_id: int, *, by: str) -> None:
    """An operator (`by`) gives up on a parked letter; it stays listed, as discarded, with who did it.
    Only a parked one can be."""
    row = await load(conn, table, dead_letter_id, lock=True)
    if row is None:
        raise NotFound(f"dead letter {dead_letter_id} not found")
    if row.status != PARKED:
        raise Conflict(f"dead letter {dead_letter_id} is {row.status}", code="not_parked")
    await conn.execute(
        update(table)
        .where(table.c.id == dead_letter_id)
        .values(status=DISCARDED, resolved_at=func.now(), resolved_by=by)
    )


async def record_retrier(
    conn: AsyncConnection, table: Table, dead_letter_ids: Sequence[int], by: str
) -> None:
    """Name the operator (`by`) on the letters a retry resolved: recorded right after the retry, since
    the letters it re-ran were resolved inside the consumer's own transactions."""
    await conn.execute(
        update(table)
        .where(table.c.id.in_(dead_letter_ids), table.c.status == RETRIED, table.c.resolved_by.is_(None))
        .values(resolved_by=by)
    )


def describe(row: Any) -> dict[str, Any]:
    """A dead letter as the HTTP API and CLI show it."""
    value: bytes | None = row.value
    return {
        "id": row.id,
        "consumer": row.consumer,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "key": row.key,
        "order_id": row.order_id,
        "event_id": str(row.event_id) if row.event_id else None,
        "event_type": row.event_type,
        "error": row.error,
        "status": row.status,
        "blocked_by": row.blocked_by,
        "parked_at": row.parked_at.isoformat(),
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
        "resolved_by": row.resolved_by,
        "value": value.decode("utf-8", errors="replace") if value is not None else None,
    }
