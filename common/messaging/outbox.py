"""The transactional outbox: events are written with the state change, and published afterwards."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.events import Envelope, encode_event


async def enqueue(conn: AsyncConnection, outbox: Table, topic: str, envelopes: Iterable[Envelope]) -> int:
    """Add events to the outbox inside the caller's transaction; the relay publishes them after commit."""
    rows = [
        {
            "topic": topic,
            "key": envelope.order_id,
            "event_id": envelope.event_id,
            "event_type": envelope.type,
            "value": encode_event(envelope),
        }
        for envelope in envelopes
    ]
    if rows:
        await conn.execute(insert(outbox), rows)
    return len(rows)
