"""Reads of the order service's API: an order with its timeline, and pages of orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from order import models
from order.saga import TERMINAL_STATUSES, OrderStatus


async def order_and_timeline(conn: AsyncConnection, order_id: str) -> tuple[Any, list[Any]] | None:
    """The order's row and its timeline in id order; None if the order is not recorded."""
    orders, timeline = models.orders, models.timeline
    order = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).first()
    if order is None:
        return None
    entries = await conn.execute(
        select(timeline).where(timeline.c.order_id == order_id).order_by(timeline.c.id)
    )
    return order, list(entries.all())


async def order_page(
    conn: AsyncConnection, *, status: OrderStatus | None, stuck_for: int | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    """A page of orders and how many match: newest first, or with `stuck_for` the non-terminal orders
    untouched that many seconds, oldest first (they are the most urgent)."""
    orders = models.orders
    page = select(orders).limit(limit).offset(offset)
    count = select(func.count()).select_from(orders)
    if stuck_for is not None:
        idle = (
            orders.c.status.not_in([terminal.value for terminal in TERMINAL_STATUSES]),
            orders.c.updated_at <= func.now() - timedelta(seconds=stuck_for),
        )
        page = page.where(*idle).order_by(orders.c.updated_at, orders.c.order_id)
        count = count.where(*idle)
    else:
        page = page.order_by(orders.c.created_at.desc(), orders.c.order_id)
    if status is not None:
        page = page.where(orders.c.status == status.value)
        count = count.where(orders.c.status == status.value)
    rows = (await conn.execute(page)).all()
    return list(rows), int(await conn.scalar(count) or 0)
