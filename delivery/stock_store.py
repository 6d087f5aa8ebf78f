"""Loading and saving stock levels around the pure inventory rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from delivery import models
from delivery.inventory import Line, StockLevel


def lines_of(raw: Iterable[dict[str, object]]) -> list[Line]:
    return [Line(sku=str(line["sku"]), quantity=int(str(line["quantity"]))) for line in raw]


async def lock_levels(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, StockLevel]:
    """Lock the stock rows of these SKUs, in SKU order so concurrent reservations never deadlock."""
    rows = await pg.fetch_all(
        conn,
        f"SELECT sku, on_hand, reserved, shipped FROM {models.stock.name} WHERE sku = ANY(%s::text[])"
        " ORDER BY sku FOR UPDATE",
        (sorted(set(skus)),),
    )
    return {
        sku: StockLevel(sku=sku, on_hand=on_hand, reserved=reserved, shipped=shipped)
        for sku, on_hand, reserved, shipped in rows
    }


async def save_levels(conn: AsyncConnection, levels: Mapping[str, StockLevel]) -> None:
    """Write new levels of rows the caller locked (one statement for all of them)."""
    if not levels:
        return
    table = models.stock.name
    await pg.execute(
        conn,
        f"UPDATE {table} SET on_hand = level.on_hand, reserved = level.reserved, shipped = level.shipped,"
        " updated_at = now()"
        " FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[]) AS level(sku, on_hand, reserved, shipped)"
        f" WHERE {table}.sku = level.sku",
        (
            [level.sku for level in levels.values()],
            [level.on_hand for level in levels.values()],
            [level.reserved for level in levels.values()],
            [level.shipped for level in levels.values()],
        ),
    )
