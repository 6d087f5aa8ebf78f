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
from delivery.inventory import Line, ship
from delivery.lifecycle import (
    STEPS,
    SWEPT,
    AlreadyDone,
    CarrierStep,
    StepConflict,
    StepEvent,
    StockMove,
    step,
    sweep_steps,
)
from delivery.stock_store import lines_of, lock_levels, save_levels_statement

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
    made = await _make_steps(conn, [(shipment, (carrier_step,))], by)
    await pg.execute_together(conn, made.writes)
    return made.events, made.traces


async def auto_progress(unit_of_work: Callable[[], UnitOfWork], after: timedelta) -> int:
    """Demo mode: make every step declared `auto_progress` for the shipments that have waited `after` in
    its required status (ship what has been scheduled, deliver what has been shipped), in the carrier's
    order; returns how many steps it made.

    One transaction per sweep, since it runs after every consumer commit, and a fixed number of
    statements in it: one read finds every due shipment, whatever its status, and the steps are written
    with their events in one statement. With `after` = 0 a shipment shipped by the sweep is due at once
    (the step stamps it with the sweep's time), so the same sweep also delivers it
    (`lifecycle.sweep_steps`).

    A sweep never waits long for a lock. The consumer applies a batch of events in one transaction, so
    it can hold a stock row (reserved for one order) and then want a shipment row this sweep holds while
    the sweep wants that stock row: a deadlock PostgreSQL breaks only after a second. Giving up after
    `_SWEEP_LOCK_TIMEOUT` lets the consumer go on; the next sweep takes those shipments (the read sets
    the timeout for the rest of the transaction).
    """
    due_at_once = after <= timedelta(0)
    moved = 0
    try:
        async with unit_of_work() as work:
            due = [_Shipment(*row) for row in await pg.fetch_all(work.conn, *due_shipments(after))]
            if due:
                plans = [
                    (shipment, sweep_steps(shipment.status, due_at_once=due_at_once)) for shipment in due
                ]
                made = await _make_steps(work.conn, plans, AUTO_PROGRESS)
                outbox = work.emit_as_statement(made.events, made.traces)
                await pg.execute_together(work.conn, [*made.writes, outbox])
                moved = len(made.events)
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        log.info("auto-progress: the sweep met a busy lock; the next sweep retries")
        return 0
    return moved


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


@dataclass(frozen=True)
class _Shipment:
    order_id: str
    status: str
    lines: list[dict[str, Any]]
    tracking_code: str | None
    trace_context: str | None  # the saga's trace, which its Shipped and Delivered continue
    lock_timeout: str  # the sweep's, set by the read


AUTO_PROGRESS = "auto-progress"  # who made the steps the demo sweep made

# The columns that record who made each step (one per step, `lifecycle.declared_step`).
_MADE_BY = tuple(rules.made_by for rules in STEPS.values())


@dataclass(frozen=True)
class _Made:
    """Steps made in memory: their events in order (each shipment's in the carrier's order), each
    event's trace, and the writes that save them (run them with `pg.execute_together`)."""

    events: list[Envelope]
    traces: list[str | None]
    writes: list[pg.Statement]


async def _make_steps(
    conn: AsyncConnection, plans: Sequence[tuple[Any, Sequence[CarrierStep]]], by: str
) -> _Made:
    """Make each shipment's steps, in order, as made by `by`: shipments locked by the caller, each in
    its first step's required state and each step starting where the one before ends.

    A fixed number of statements however many shipments and steps: the stock rows the steps move are
    locked and read in one, and the new stock levels and every shipment's new state are one write each,
    independent of each other (the caller runs them together, with the outbox rows of the events).
    `progress` uses it for one step of one shipment, the sweep for many.
    """
    shipped: list[Line] = []
    changes: list[tuple[str, str, str | None, set[str]]] = []  # order id, status, tracking code, made_by
    events: list[Envelope] = []
    traces: list[str | None] = []
    for shipment, carrier_steps in plans:
        if not carrier_steps:
            continue
        tracking = shipment.tracking_code
        made_by: set[str] = set()
        for carrier_step in carrier_steps:
            rules = STEPS[carrier_step]
            match rules.stock:
                case StockMove.SHIP:
                    shipped.extend(lines_of(shipment.lines))
                case StockMove.NONE:
                    pass
                case _:
                    assert_never(rules.stock)
            tracking = _tracking_code() if rules.new_tracking_code else tracking
            made_by.add(rules.made_by)
            payload = step_event(rules.emits, tracking)
            events.append(new_envelope(payload, order_id=shipment.order_id, producer=Service.DELIVERY.value))
            traces.append(shipment.trace_context)
        changes.append((shipment.order_id, STEPS[carrier_steps[-1]].reached.value, tracking, made_by))
    writes: list[pg.Statement] = []
    if shipped:
        levels = ship(await lock_levels(conn, (line.sku for line in shipped)), shipped)
        if levels:
            writes.append(save_levels_statement(levels))
    if changes:
        writes.append(_save_shipments(changes, by))
    return _Made(events, traces, writes)


def _save_shipments(changes: Sequence[tuple[str, str, str | None, set[str]]], by: str) -> pg.Statement:
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
            [order_id for order_id, _, _, _ in changes],
            [status for _, status, _, _ in changes],
            [tracking for _, _, tracking, _ in changes],
            *([by if column in made else None for _, _, _, made in changes] for column in _MADE_BY),
        ),
    )


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
