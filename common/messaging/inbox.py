"""The inbox: remembers which events a consumer has already applied."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.events import Envelope


async def claim_event(conn: AsyncConnection, inbox: Table, consumer: str, envelope: Envelope) -> bool:
    """Record that `consumer` applies `envelope` in this transaction; False if it already did.

    Called inside the handler's transaction, so the record commits if and only if the effect does:
    a redelivered event finds its row and becomes a no-op.
    """
    statement = (
        insert(inbox)
        .values(
            consumer=consumer,
            event_id=envelope.event_id,
            event_type=envelope.type,
            order_id=envelope.order_id,
        )
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return (await conn.execute(statement)).first() is not None
