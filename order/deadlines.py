"""The delivery deadline: an order delivery has not answered in time is asked to be cancelled (timeout).

The order does not cancel on its own: delivery may have reserved and even shipped while its answer was
delayed, so the expired deadline becomes a cancellation request, which delivery confirms or refuses.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from common.messaging.unit_of_work import UnitOfWork
from order import models
from order.handlers import SagaStep, advance_many
from order.saga import OrderStatus, SagaInput

_DETAIL = "delivery did not answer before the deadline"


async def expire_deadlines(unit_of_work: Callable[[], UnitOfWork], limit: int = 100) -> int:
    """Ask delivery to cancel up to `limit` overdue orders still waiting for its answer; returns how many.

    SKIP LOCKED lets several order workers sweep at once, and leaves alone an order whose row an event
    handler holds right now (that handler may be the answer that makes the deadline moot).
    """
    orders = models.orders
    async with unit_of_work() as work:
        overdue = (
            await work.conn.scalars(
                select(orders.c.order_id)
                .where(orders.c.status == OrderStatus.PLACED, orders.c.deadline_at <= func.now())
                .order_by(orders.c.deadline_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if overdue:
            steps = [SagaStep(order_id, SagaInput.DEADLINE_EXPIRED, detail=_DETAIL) for order_id in overdue]
            advanced = await advance_many(work.conn, steps)
            for result in advanced:
                trace = result.order.trace_context if result.order is not None else None
                work.emit(result.emitted, [trace] * len(result.emitted) if trace else ())
    return len(overdue)
