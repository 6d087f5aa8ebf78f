"""Cancels for orders the order service has not seen yet, kept until the order exists.

Payment answers a checkout `202` before the order service has consumed its PaymentCompleted (seconds,
under a fault). A customer cancel in that window is honoured: the API checks with payment that the
checkout was accepted, and records the cancel here; the transaction that creates the order applies it
right away (`order/saga_batch.py`), so OrderPlaced and OrderCancellationRequested leave together and
delivery never ships that order.

Both sides take the same per-order lock before they look: the API before it checks whether the order
exists, the consumer before it creates it (with its inbox claim, the statement before the one that
looks). Without it, each could miss the other's uncommitted write, and the cancel would wait here
forever.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from order import models

# Advisory locks with two int4 keys live apart from the relay's single-bigint ones; this class is ours.
_CREATION_LOCK_CLASS = 0x0DE7


def _lock_key(order_id: str) -> int:
    """A stable signed 32-bit key per order id (two ids sharing a key only wait for each other)."""
    key = zlib.crc32(order_id.encode())
    return key - 2**32 if key >= 2**31 else key


def creation_locks(order_ids: Iterable[str]) -> pg.AdvisoryLocks:
    """The right to create these orders or record a cancel for them, held until the transaction ends."""
    return pg.AdvisoryLocks.of(_CREATION_LOCK_CLASS, (_lock_key(order_id) for order_id in order_ids))


async def lock_creation(conn: AsyncConnection, order_ids: Sequence[str]) -> None:
    """Take `creation_locks` in a statement of their own (the consumer's runner takes them with its
    inbox claim instead: `order.handlers.creation_locks_of`)."""
    await creation_locks(order_ids).take(conn)


async def pending(conn: AsyncConnection, order_ids: Sequence[str]) -> set[str]:
    """Which of these orders have a cancel waiting for them (call after `lock_creation`)."""
    rows = await pg.fetch_all(
        conn,
        f"SELECT order_id FROM {models.early_cancels.name} WHERE order_id = ANY(%s::text[])",
        (list(order_ids),),
    )
    return {order_id for (order_id,) in rows}


async def record(conn: AsyncConnection, order_id: str) -> bool:
    """Keep the customer's cancel until the order exists (call after `lock_creation`); False if it was
    already kept (a repeated cancel)."""
    return (
        await pg.execute(
            conn,
            f"INSERT INTO {models.early_cancels.name} (order_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (order_id,),
        )
        == 1
    )


def forget_statement(order_ids: Sequence[str]) -> pg.Statement:
    """The cancels applied to the orders just created, to delete with the batch's other writes."""
    return pg.Statement(
        f"DELETE FROM {models.early_cancels.name} WHERE order_id = ANY(%s::text[])", (list(order_ids),)
    )
