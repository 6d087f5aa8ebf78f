"""Reads of the order service's API: an order (recorded, or only accepted by payment so far) with its
timeline, and pages of orders, as the answers the API declares (`order/answers.py`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.db import reading
from common.errors import NotFound
from common.tenancy import order_id_of
from order import early_cancels, models
from order.answers import OrderAnswer, OrderDetail, OrderList
from order.payment_lookup import PaymentLookup
from order.saga import TERMINAL_STATUSES, OrderStatus


async def find_order(engine: AsyncEngine, payments: PaymentLookup, order_id: str) -> OrderDetail:
    """The order as recorded, with its timeline; else as payment accepted it (ACCEPTED, with the cancel
    the customer already asked for, which is kept until the order exists). NotFound if payment never
    accepted a checkout for it, Unavailable if payment cannot be asked."""
    async with reading(engine) as conn:
        # The early cancel first: the transaction creating the order takes it away as it commits the
        # order, so read in this order neither can be missed between the two reads.
        early = bool(await early_cancels.pending(conn, [order_id]))
        found = await order_and_timeline(conn, order_id)
    if found is not None:
        return found
    checkout = await payments.accepted_checkout(order_id)
    if checkout is None:
        raise NotFound(f"order {order_id_of(order_id)} not found")
    return OrderDetail.accepted(checkout, cancel_requested=early)


async def order_and_timeline(conn: AsyncConnection, order_id: str) -> OrderDetail | None:
    """The order with its timeline in id order; None if the order is not recorded."""
    orders, timeline = models.orders, models.timeline
    order = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).first()
    if order is None:
        return None
    entries = await conn.execute(
        select(timeline).where(timeline.c.order_id == order_id).order_by(timeline.c.id)
    )
    return OrderDetail.recorded(order, entries.all())


async def order_page(
    engine: AsyncEngine,
    *,
    owners: frozenset[str] | None,
    status: OrderStatus | None,
    stuck_for: int | None,
    customer_id: str | None = None,
    limit: int,
    offset: int,
    after: str | None = None,
) -> OrderList:
    """A page of `owners`' orders (every owner's when None), how many match, and the cursor of the next
    page (`next_after`: the saga id of the page's last order; None on the last): newest first, or with
    `stuck_for` the non-terminal orders untouched that many seconds, oldest first (the most urgent).
    `after` (a saga id: the previous page's last order) starts past that order, by a seek on the list's
    index; NotFound if there is no such order."""
    orders = models.orders
    page = select(orders).limit(limit).offset(offset)
    count = select(func.count()).select_from(orders)
    if owners is not None:
        page = page.where(orders.c.owner.in_(sorted(owners)))
        count = count.where(orders.c.owner.in_(sorted(owners)))
    if stuck_for is not None:
        idle = (
            orders.c.status.not_in([terminal.value for terminal in TERMINAL_STATUSES]),
            orders.c.updated_at <= func.now() - timedelta(seconds=stuck_for),
        )
        page = page.where(*idle).order_by(orders.c.updated_at, orders.c.order_id)
        count = count.where(*idle)
        sorted_at = orders.c.updated_at
    else:
        page = page.order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
        sorted_at = orders.c.created_at
    if status is not None:
        page = page.where(orders.c.status == status.value)
        count = count.where(orders.c.status == status.value)
    if customer_id is not None:  # ix_orders_customer_created
        page = page.where(orders.c.customer_id == customer_id)
        count = count.where(orders.c.customer_id == customer_id)
    async with reading(engine) as conn:
        if after is not None:
            at = await conn.scalar(select(sorted_at).where(orders.c.order_id == after))
            if at is None:
                raise NotFound(f"order {order_id_of(after)} not found")
            key, past = tuple_(sorted_at, orders.c.order_id), tuple_(literal(at), literal(after))
            page = page.where(key > past if stuck_for is not None else key < past)
        rows = list((await conn.execute(page)).all())
        total = int(await conn.scalar(count) or 0)
    return OrderList(
        items=[OrderAnswer.from_row(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_after=rows[-1].order_id if len(rows) == limit else None,
    )
