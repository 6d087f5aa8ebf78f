"""Shipment progress: SCHEDULED → SHIPPED → DELIVERED, driven by the carrier API or auto-progress.

The rules are `delivery/lifecycle.py`'s: each carrier step's declaration says which status it needs and
reaches, the event it emits, how it moves the stock and where it records who made it. A step reads
load → decide → save on a `ShipmentStore` (`delivery/shipments.py`): the shipment is locked, the step
decided (`lifecycle.step`), made in memory with its events, and saved with the stock it moves; the
events go out with the caller's unit of work.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, assert_never

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from common import pg
from common.config import Service
from common.errors import Conflict, NotFound
from common.events import Envelope, new_envelope
from common.events.delivery import Delivered, Shipped
from common.messaging.unit_of_work import UnitOfWork
from common.tenancy import order_id_of
from delivery import queries
from delivery.inventory import Line, StockLevel, ship
from delivery.lifecycle import (
    STEPS,
    AlreadyDone,
    CarrierStep,
    StepConflict,
    StepEvent,
    StockMove,
    step,
    sweep_steps,
)
from delivery.shipment_store import SqlShipmentStore
from delivery.shipments import Shipment, ShipmentStore, StepsSaved
from delivery.stock_store import lines_of

log = logging.getLogger(__name__)

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
        events, traces = await progress(SqlShipmentStore(work.conn), order_id, carrier_step, by=by)
        work.emit(events, traces)
    return await queries.shipment_of(engine, order_id)


async def progress(
    store: ShipmentStore, order_id: str, carrier_step: CarrierStep, *, by: str
) -> tuple[list[Envelope], list[str | None]]:
    """Make one carrier step inside the store's transaction; returns its event, or none if the step was
    already made (a retried call), and the saga's trace the event continues.
    Raises ShipmentNotFound, or ShipmentConflict when the shipment is not in the state the step needs."""
    shipment = await store.lock(order_id)
    if shipment is None:
        raise ShipmentNotFound(f"shipment for order {order_id_of(order_id)} not found")
    verdict = step(shipment.status, carrier_step)
    if isinstance(verdict, AlreadyDone):
        return [], []
    if isinstance(verdict, StepConflict):
        raise ShipmentConflict(f"order {order_id_of(order_id)}: {verdict.why}")
    made = _make_steps([(shipment, (carrier_step,))])
    await store.save_steps(made.shipments, await _shipped_levels(store, made.shipped), by)
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
    the sweep's lock timeout (`shipment_store.due_shipments`) lets the consumer go on; the next sweep
    takes those shipments (the read sets the timeout for the rest of the transaction).
    """
    due_at_once = after <= timedelta(0)
    moved = 0
    try:
        async with unit_of_work() as work:
            store = SqlShipmentStore(work.conn)
            due = await store.due(after)
            if due:
                plans = [
                    (shipment, sweep_steps(shipment.status, due_at_once=due_at_once)) for shipment in due
                ]
                made = _make_steps(plans)
                levels = await _shipped_levels(store, made.shipped)
                outbox = work.emit_as_statement(made.events, made.traces)
                await pg.execute_together(
                    work.conn, [*store.step_writes(made.shipments, levels, AUTO_PROGRESS), outbox]
                )
                moved = len(made.events)
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        log.info("auto-progress: the sweep met a busy lock; the next sweep retries")
        return 0
    return moved


AUTO_PROGRESS = "auto-progress"  # who made the steps the demo sweep made


@dataclass(frozen=True)
class _Made:
    """Steps made in memory: their events in order (each shipment's in the carrier's order), each
    event's trace, the lines whose units leave the shelf, and each moved shipment's new state."""

    events: list[Envelope]
    traces: list[str | None]
    shipped: list[Line]
    shipments: list[StepsSaved]


def _make_steps(plans: Sequence[tuple[Shipment, Sequence[CarrierStep]]]) -> _Made:
    """Make each shipment's steps in memory, in order: shipments locked by the caller, each in its first
    step's required state and each step starting where the one before ends.

    What they change is saved in a fixed number of statements however many shipments and steps
    (`ShipmentStore.save_steps`): the stock rows the steps move are locked and read in one, and the new
    stock levels and every shipment's new state are one write each. `progress` uses it for one step of
    one shipment, the sweep for many.
    """
    shipped: list[Line] = []
    changes: list[StepsSaved] = []
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
        reached = STEPS[carrier_steps[-1]].reached.value
        changes.append(StepsSaved(shipment.order_id, reached, tracking, frozenset(made_by)))
    return _Made(events, traces, shipped, changes)


async def _shipped_levels(store: ShipmentStore, shipped: Sequence[Line]) -> dict[str, StockLevel]:
    """The new levels of the stock the steps ship (its rows locked); none if they ship nothing."""
    if not shipped:
        return {}
    return ship(await store.lock_levels(line.sku for line in shipped), shipped)


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
