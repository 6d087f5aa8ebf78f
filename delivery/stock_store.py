"""Loading and saving stock levels around the pure inventory rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery import models
from delivery.inventory import Line, StockLevel


def lines_of(raw: Iterable[dict[str, object]]) -> list[Line]:
    return [Line(sku=str(line["sku"]), quantity=int(str(line["quantity"]))) for line in raw]


async def lock_levels(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, StockLevel]:
    """Lock the stock rows of these SKUs, in SKU order so concurrent reservations never deadlock."""
    stock = models.stock
    rows = await conn.execute(
        select(stock).where(stock.c.sku.in_(sorted(set(skus)))).order_by(stock.c.sku).with_for_update()
    )
    return {
        row.sku: StockLevel(sku=row.sku, on_hand=row.on_hand, reserved=row.reserved, shipped=row.shipped)
        for row in rows
    }


async def save_levels(conn: AsyncConnection, levels: Mapping[str, StockLevel]) -> None:
    stock = models.stock
    for level in levels.values():
        await conn.execute(
            update(stock)
            .where(stock.c.sku == level.sku)
            .values(
                on_hand=level.on_hand, reserved=level.reserved, shipped=level.shipped, updated_at=func.now()
            )
        )
