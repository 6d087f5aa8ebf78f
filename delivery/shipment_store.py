"""Delivery's shipments in PostgreSQL, on the caller's transaction: the SQL behind `ShipmentStore`.

Built on the connection of the transaction it works in (the runner's, for a handler; a unit of work's,
for a carrier's call or the sweep), so a shipment's lock holds until that transaction ends. The
statements are those the handlers and the steps always sent: one to lock the shipment, one to lock the
stock rows, and the writes of a step in one statement (`pg.execute_together`, with the sweep's outbox
row when it has one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from delivery import models
from delivery.inventory import StockLevel
from delivery.lifecycle import STEPS, SWEPT, ShipmentStatus
from delivery.shipments import Shipment, StepsSaved
from delivery.stock_store import lock_levels, save_levels, save_levels_statement

_SWEEP_LOCK_TIMEOUT = "100ms"
_SWEEP_LIMIT = 200

# The columns that record who made each step (one per step, `lifecycle.declared_step`).
_MADE_BY = tuple(rules.made_by for rules in STEPS.values())


class SqlShipmentStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, order_id: str) -> Shipment | None:
        shipments = models.shipments
        row = (
            await self._conn.execute(
                select(shipments).where(shipments.c.order_id == order_id).with_for_update()
            )
        ).first()
        if row is None:
            return None
        return Shipment(row.order_id, row.status, row.lines, row.tracking_code, row.trace_context)

    async def lock_levels(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        return await lock_levels(self._conn, skus)

    async def save_steps(
        self, shipments: Sequence[StepsSaved], levels: Mapping[str, StockLevel], by: str
    ) -> None:
        await pg.execute_together(self._conn, self.step_writes(shipments, levels, by))

    def step_writes(
        self, shipments: Sequence[StepsSaved], levels: Mapping[str, StockLevel], by: str
    ) -> list[pg.Statement]:
        """`save_steps` as statements, to run together with others (the sweep's outbox row)."""
        writes: list[pg.Statement] = []
        if levels:
            writes.append(save_levels_statement(levels))
        if shipments:
            writes.append(_save_shipments(shipments, by))
        return writes

    async def remember_cancel(self, order_id: str, status: ShipmentStatus) -> None:
        await self._conn.execute(insert(models.shipments).values(order_id=order_id, status=status, lines=[]))

    async def save_cancel(
        self, order_id: str, levels: Mapping[str, StockLevel], status: ShipmentStatus | None
    ) -> None:
        shipments = models.shipments
        await save_levels(self._conn, levels)
        if status is not None:
            await self._conn.execute(
                update(shipments)
                .where(shipments.c.order_id == order_id)
                .values(status=status, updated_at=func.now())
            )

    async def due(self, after: timedelta) -> list[Shipment]:
        """The shipments the sweep moves on (`due_shipments`), locked; the read also sets the sweep's
        lock timeout for the rest of the transaction."""
        return [
            Shipment(order_id, status, lines, tracking_code, trace_context)
            for order_id, status, lines, tracking_code, trace_context, _ in await pg.fetch_all(
                self._conn, *due_shipments(after)
            )
        ]


def due_shipments(after: timedelta) -> tuple[str, tuple[Any, ...]]:
    """Shipments in a status the sweep moves on (`lifecycle.SWEPT`) for at least `after`, oldest first,
    locked (skipping busy ones): the statement and its parameters, rows (order_id, status, lines,
    tracking_code, trace_context, and the sweep's lock timeout, which the read sets for the rest of the
    transaction once it has found a due shipment)."""
    # The statuses inline, not a parameter: PostgreSQL can then prove the partial index
    # `ix_shipments_in_transit_updated` applies even to a prepared statement's generic plan.
    statuses = ", ".join(f"'{status.value}'" for status in SWEPT)
    # The lock timeout with the rows it is for, where `SET LOCAL` was a round trip of its own on every
    # sweep; the read itself skips locked rows, so it never waits for one.
    return (
        "WITH due AS (SELECT order_id, status, lines, tracking_code, trace_context, updated_at"
        f" FROM {models.shipments.name} WHERE status IN ({statuses}) AND updated_at <= now() - %s::interval"
        " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " SELECT order_id, status, lines, tracking_code, trace_context,"
        " set_config('lock_timeout', %s, true) FROM due ORDER BY updated_at",
        (after, _SWEEP_LIMIT, _SWEEP_LOCK_TIMEOUT),
    )


def _save_shipments(changes: Sequence[StepsSaved], by: str) -> pg.Statement:
    """Every moved shipment's new status and tracking code, and `by` in the columns of the steps it made
    (the others keep what they hold): one statement."""
    table = models.shipments.name
    made_by = ", ".join(f"{column} = COALESCE(moved.{column}, {table}.{column})" for column in _MADE_BY)
    arrays = ", ".join("%s::text[]" for _ in range(3 + len(_MADE_BY)))
    return pg.Statement(
        f"UPDATE {table} SET status = moved.status, tracking_code = moved.tracking_code, updated_at = now(),"
        f" {made_by}"
        f" FROM unnest({arrays}) AS moved(order_id, status, tracking_code, {', '.join(_MADE_BY)})"
        f" WHERE {table}.order_id = moved.order_id",
        (
            [change.order_id for change in changes],
            [change.status for change in changes],
            [change.tracking_code for change in changes],
            *([by if column in change.made_by else None for change in changes] for column in _MADE_BY),
        ),
    )
