"""The delivery deadline: an order delivery has not answered in time is cancelled with reason timeout."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Service
from common.messaging.outbox import enqueue
from order import models
from order.handlers import advance
from order.saga import OrderStatus, SagaInput


async def expire_deadlines(engine: AsyncEngine, wake_relay: Callable[[], None], limit: int = 100) -> int:
    """Cancel up to `limit` overdue orders still waiting for delivery; returns how many were cancelled.

    SKIP LOCKED lets several order workers sweep at once, and leaves alone an order whose row an event
    handler holds right now (that handler may be the answer that makes the deadline moot).
    """
    orders = models.orders
    async with engine.begin() as conn:
        overdue = (
            await conn.scalars(
                select(orders.c.order_id)
                .where(orders.c.status == OrderStatus.PLACED, orders.c.deadline_at <= func.now())
                .order_by(orders.c.deadline_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        emitted = []
        for order_id in overdue:
            advanced = await advance(
                conn,
                order_id,
                SagaInput.DEADLINE_EXPIRED,
                detail="delivery did not answer before the deadline",
            )
            emitted.extend(advanced.emitted)
        await enqueue(conn, models.messaging.outbox, Service.ORDER.value, emitted)
    if emitted:
        wake_relay()
    return len(overdue)
