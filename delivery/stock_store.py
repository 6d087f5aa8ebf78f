"""Loading and saving stock levels around the pure inventory rules, and the operator's count (`set_stock`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import pg
from delivery import models
from delivery.inventory import Line, StockLevel, restock


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
    if levels:
        statement = save_levels_statement(levels)
        await pg.execute(conn, statement.sql, statement.params)


def save_levels_statement(levels: Mapping[str, StockLevel]) -> pg.Statement:
    """`save_levels` as a statement, to run with other writes (`pg.execute_together`); `levels` not empty."""
    table = models.stock.name
    return pg.Statement(
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


async def set_stock(engine: AsyncEngine, counts: Mapping[str, int], *, by: str) -> list[StockLevel]:
    """The operator's count, made by the caller named `by`: set the shelf count of each SKU, in one
    transaction. Returns the new levels, in the order of `counts`; raises InvalidStockLevel for a
    negative count."""
    async with engine.begin() as conn:
        return await set_counts(conn, counts, by=by)


async def set_counts(conn: AsyncConnection, counts: Mapping[str, int], *, by: str) -> list[StockLevel]:
    """Set the shelf count of each SKU (created if new) in a few statements whatever their number; each
    change is added to the SKU's stocked total, and each SKU records who counted it last (`by`).
    Returns the new levels, in the order of `counts`."""
    stock = models.stock.name
    await pg.execute(
        conn,
        f"INSERT INTO {stock} (sku, on_hand, reserved, shipped, stocked)"
        " SELECT sku, 0, 0, 0, 0 FROM unnest(%s::text[]) AS new(sku) ON CONFLICT DO NOTHING",
        (list(counts),),
    )
    levels = await lock_levels(conn, counts)
    changes = [restock(levels[sku], on_hand) for sku, on_hand in counts.items()]
    await pg.execute(
        conn,
        f"UPDATE {stock} SET on_hand = counted.on_hand, stocked = {stock}.stocked + counted.delta,"
        " updated_at = now(), updated_by = %s"
        " FROM unnest(%s::text[], %s::int[], %s::int[]) AS counted(sku, on_hand, delta)"
        f" WHERE {stock}.sku = counted.sku",
        (
            by,
            [level.sku for level, _ in changes],
            [level.on_hand for level, _ in changes],
            [delta for _, delta in changes],
        ),
    )
    return [level for level, _ in changes]
