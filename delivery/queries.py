"""Reads of delivery's API: a SKU's stock, every SKU's, and an order's shipment, as the answers the API
declares (`delivery/answers.py`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import reading
from common.errors import NotFound
from common.tenancy import order_id_of
from delivery import models
from delivery.answers import ShipmentAnswer, StockList, StockRow


async def stock_of(engine: AsyncEngine, sku: str) -> StockRow:
    """The stock of `sku`; NotFound if it was never stocked."""
    stock = models.stock
    async with reading(engine) as conn:
        row = (await conn.execute(select(stock).where(stock.c.sku == sku))).first()
    if row is None:
        raise NotFound(f"sku {sku} not found")
    return StockRow.from_row(row)


async def stock_page(engine: AsyncEngine, *, after: str | None, limit: int) -> StockList:
    """At most `limit` SKUs' stock by SKU, from the SKU after `after` (a seek on the primary key); the
    page's last SKU is the next page's `after` when the page is full."""
    stock = models.stock
    page = select(stock).order_by(stock.c.sku).limit(limit)
    if after is not None:
        page = page.where(stock.c.sku > after)
    async with reading(engine) as conn:
        rows = (await conn.execute(page)).all()
    return StockList(
        items=[StockRow.from_row(row) for row in rows],
        next_after=rows[-1].sku if len(rows) == limit else None,
    )


async def shipment_of(engine: AsyncEngine, order_id: str) -> ShipmentAnswer:
    """The shipment of `order_id`; NotFound if the order has none."""
    shipments = models.shipments
    async with reading(engine) as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.order_id == order_id))).first()
    if row is None:
        raise NotFound(f"shipment for order {order_id_of(order_id)} not found")
    return ShipmentAnswer.from_row(row)
