"""Shipment progress: SCHEDULED → SHIPPED → DELIVERED, driven by the carrier API or auto-progress.

The rules are `delivery/lifecycle.py`'s: each carrier step's declaration says which status it needs and
reaches, the event it emits, how it moves the stock and where it records who made it. This module loads
and locks the shipments, and makes the steps as declared, with their events, through the caller's unit of
work.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, assert_never

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import pg
from common.config import Service
from common.errors import Conflict, NotFound
from common.events import Envelope, new_envelope
from common.events.delivery import Delivered, Shipped
from common.messaging.unit_of_work import UnitOfWork
from common.tenancy import order_id_of
from delivery import models, queries
from delivery.inventory import ship
from delivery.lifecycle import (
    STEPS,
    AlreadyDone,
    CarrierStep,
    ShipmentStatus,
    StepConflict,
    StepEvent,
    StockMove,
    step,
)
from delivery.stock_store import lines_of, lock_levels, save_levels

log = logging.getLogger(__name__)

_SWEEP_LOCK_TIMEOUT = "100ms"
_SWEEP_LIMIT = 200
_LOCK_NOT_AVAILABLE = "55P03"


class ShipmentNotFound(NotFound):
    code = "not_found"


class ShipmentConflict(Conflict):
    """The shipment is not in the state the step needs (e.g. shipping a released reservation)."""

    code = "wrong_state"


async def carrier_progress(
    unit_of_work: Callable[[], UnitOfWork],
    engine: AsyncEngine,
    order_id: str,
    carrier_step: CarrierStep,
    *,
    by: str,
) -> Any:
    """The carrier's step (ship or deliver) on the order's shipment, made by the caller named `by` (the
    shipment records who), then the shipment as it now stands.
    Raises ShipmentNotFound, or ShipmentConflict when the shipment is not in the state the step needs."""
    async with unit_of_work() as work:
        events, traces = await progress(work.conn, order_id, carrier_step, by=by)
        work.emit(events, traces)
    return await queries.shipment_of(engine, order_id)


async def progress(
    conn: AsyncConnection, order_id: str, carrier_step: CarrierStep, *, by: str
) -> tuple[list[Envelope], list[str | None]]:
    """Make one carrier step inside the caller's transaction; returns its event, or none if the step was
    already made (a retried call), and the saga's trace the event continues."""
    shipments = models.shipments
    shipment = (
        await conn.execute(select(shipments).where(shipments.c.order_id == order_id).with_for_update())
    ).first()
    if shipment is None:
        raise ShipmentNotFound(f"shipment for order {order_id_of(order_id)} not found")
    verdict = step(shipment.status, carrier_step)
    if isinstance(verdict, AlreadyDone):
        return [], []
    if isinstance(verdict, StepConflict):
        raise ShipmentConflict(f"order {order_id_of(order_id)}: {verdict.why}")
    return await _make_step(conn, carrier_step, [shipment], by), [shipment.trace_context]


async def auto_progress(unit_of_work: Callable[[], UnitOfWork], after: timedelta) -> int:
    """Demo mode: make every step declared `auto_progress` for the shipments that have waited `after` in
    its required status (ship what has been scheduled, deliver what has been shipped), in the carrier's
    order.

    One transaction per sweep, since it runs after every consumer commit. A shipment shipped by this
    sweep is stamped with the sweep's time, so with `after` = 0 the same sweep also delivers it.

    A sweep never waits long for a lock. The consumer applies a batch of events in one transaction, so
    it can hold a stock row (reserved for one order) and then want a shipment row this sweep holds while
    the sweep wants that stock row: a deadlock PostgreSQL breaks only after a second. Giving up after
    `_SWEEP_LOCK_TIMEOUT` lets the consumer go on; the next sweep takes those shipments.
    """
    moved = 0
    try:
        async with unit_of_work() as work:
            await pg.execute(work.conn, f"SET LOCAL lock_timeout = '{_SWEEP_LOCK_TIMEOUT}'", ())
            for carrier_step in CarrierStep:
                if not STEPS[carrier_step].auto_progress:
                    continue
                query = due_shipments(STEPS[carrier_step].required, after)
                due = [_Shipment(*row) for row in await pg.fetch_all(work.conn, *query)]
                if due:
                    events = await _make_step(work.conn, carrier_step, due, AUTO_PROGRESS)
                    work.emit(events, [shipment.trace_context for shipment in due])
                    moved += len(due)
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        log.info("auto-progress: the sweep met a busy lock; the next sweep retries")
        return 0
    return moved


def due_shipments(required: ShipmentStatus, after: timedelta) -> tuple[str, tuple[Any, ...]]:
    """Shipments in `required` state for at least `after`, oldest first, locked (skipping busy ones):
    the statement and its parameters, rows (order_id, lines, tracking_code, trace_context)."""
    # The status inline, not a parameter: PostgreSQL can then prove the partial index
    # `ix_shipments_in_transit_updated` applies even to a prepared statement's generic plan.
    return (
        f"SELECT order_id, lines, tracking_code, trace_context FROM {models.shipments.name}"
        f" WHERE status = '{required.value}' AND updated_at <= now() - %s::interval"
        " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (after, _SWEEP_LIMIT),
    )


@dataclass(frozen=True)
class _Shipment:
    order_id: str
    lines: list[dict[str, Any]]
    tracking_code: str | None
    trace_context: str | None  # the saga's trace, which its Shipped and Delivered continue


AUTO_PROGRESS = "auto-progress"  # who made the steps the demo sweep made


async def _make_step(
    conn: AsyncConnection, carrier_step: CarrierStep, due: Sequence[Any], by: str
) -> list[Envelope]:
    """Make `carrier_step` for shipments locked by the caller and all in the step's required state, as
    made by `by`; returns the events, one per shipment, in order (the caller emits them).

    A fixed number of statements however many shipments: the stock of all of them moves together (one
    row per SKU), then every shipment. `progress` uses it for one, the sweep for many.
    """
    rules = STEPS[carrier_step]
    match rules.stock:
        case StockMove.SHIP:
            lines = [line for shipment in due for line in lines_of(shipment.lines)]
            levels = await lock_levels(conn, (line.sku for line in lines))
            await save_levels(conn, ship(levels, lines))
        case StockMove.NONE:
            pass
        case _:
            assert_never(rules.stock)
    changes: list[tuple[str, str | None]] = []
    envelopes: list[Envelope] = []
    for shipment in due:
        tracking = _tracking_code() if rules.new_tracking_code else shipment.tracking_code
        changes.append((shipment.order_id, tracking))
        payload = step_event(rules.emits, tracking)
        envelopes.append(new_envelope(payload, order_id=shipment.order_id, producer=Service.DELIVERY.value))
    shipments = models.shipments
    await pg.execute(
        conn,
        f"UPDATE {shipments.name} SET status = %s, tracking_code = moved.tracking_code, updated_at = now(),"
        f" {rules.made_by} = %s"
        " FROM unnest(%s::text[], %s::text[]) AS moved(order_id, tracking_code)"
        f" WHERE {shipments.name}.order_id = moved.order_id",
        (
            rules.reached.value,
            by,
            [order_id for order_id, _ in changes],
            [tracking for _, tracking in changes],
        ),
    )
    return envelopes


def step_event(emits: StepEvent, tracking_code: str | None) -> Shipped | Delivered:
    """The payload of the event a step declares; Shipped tells the customer the parcel's tracking code."""
    match emits:
        case StepEvent.SHIPPED:
            return Shipped(tracking_code=tracking_code)
        case StepEvent.DELIVERED:
            return Delivered()
        case _:
            assert_never(emits)


def _tracking_code() -> str:
    return f"TRK-{uuid.uuid4().hex[:10].upper()}"
