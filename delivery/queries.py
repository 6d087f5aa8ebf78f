"""Reads of delivery's API: a SKU's stock, every SKU's, and an order's shipment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import reading
from common.errors import NotFound
from common.tenancy import order_id_of
from delivery import models


async def stock_of(engine: AsyncEngine, sku: str) -> Any:
    """The stock row of `sku`; NotFound if it was never stocked."""
    stock = models.stock
    async with reading(engine) as conn:
        row = (await conn.execute(select(stock).where(stock.c.sku == sku))).first()
    if row is None:
        raise NotFound(f"sku {sku} not found")
    return row


async def stock_page(engine: AsyncEngine, *, after: str | None, limit: int) -> list[Any]:
    """At most `limit` stock rows by SKU, from the SKU after `after` (a seek on the primary key)."""
    stock = models.stock
    page = select(stock).order_by(stock.c.sku).limit(limit)
    if after is not None:
        page = page.where(stock.c.sku > after)
    async with reading(engine) as conn:
        return list((await conn.execute(page)).all())


async def shipment_of(engine: AsyncEngine, order_id: str) -> Any:
    """The shipment row of `order_id`; NotFound if the order has none."""
    shipments = models.shipments
    async with reading(engine) as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.order_id == order_id))).first()
    if row is None:
        raise NotFound(f"shipment for order {order_id_of(order_id)} not found")
    return row
