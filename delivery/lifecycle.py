"""A shipment's lifecycle, declared once: its statuses, the carrier's steps, delivery's answer to a cancel.

    (none) ─OrderPlaced→ SCHEDULED (stock reserved) | OUT_OF_STOCK (nothing reserved)
    SCHEDULED ─ship→ SHIPPED ─deliver→ DELIVERED
    SCHEDULED ─cancel→ RELEASED (stock back on the shelf)
    (none) ─cancel→ CANCELLED (the cancel came first: nothing will ever be reserved)

Shipping is the saga's pivot: once a parcel has left, a cancel is refused. Delivery owns the shipment,
so it alone decides whether an order can still be cancelled; a ship step and a cancel of the same order
are serialised by the shipment's row lock, so exactly one of them wins.

Every status is declared in `declared_status` and every carrier step in `declared_step`: each is a
`match` that names every member and ends in `assert_never`, so a member added to `ShipmentStatus` or
`CarrierStep` without its declaration fails mypy, and fails on import (`STATUSES` and `STEPS` are built
from them). The code that acts on a status or a step reads these declarations; it never guesses from
which member it is. `tests/unit/test_shipment_lifecycle.py` checks that the declarations agree with each
other: the steps form one chain from SCHEDULED, each moves the stock its statuses say, and a cancel
follows what the shipment holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import assert_never


class ShipmentStatus(StrEnum):
    SCHEDULED = "SCHEDULED"  # stock reserved
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RELEASED = "RELEASED"  # cancelled after reserving; stock returned
    OUT_OF_STOCK = "OUT_OF_STOCK"  # nothing reserved
    CANCELLED = "CANCELLED"  # the cancel arrived before the order: nothing will be reserved


class CarrierStep(StrEnum):
    """The carrier's steps, in the order a parcel goes through them (the sweep makes them in this order)."""

    SHIP = "ship"
    DELIVER = "deliver"


class Stock(StrEnum):
    """What a shipment in a status holds of the warehouse's stock."""

    NONE = "none"  # nothing: never reserved, or back on the shelf
    RESERVED = "reserved"  # its units are set aside on the shelf
    SHIPPED = "shipped"  # its units have left the warehouse with the parcel


class OnCancel(StrEnum):
    """What delivery answers to a cancel of an order whose shipment is in a status."""

    RELEASE = "release"  # confirm, put the reservation back on the shelf; the shipment becomes RELEASED
    CONFIRM = "confirm"  # confirm: nothing is held, nothing changes
    REFUSE = "refuse"  # too late: the parcel has left, the order completes and the money is kept


@dataclass(frozen=True)
class StatusRules:
    """What a shipment status means for the stock and for a cancel."""

    stock: Stock
    on_cancel: OnCancel

    @property
    def left_the_warehouse(self) -> bool:
        """Units that have shipped are the parcel that left: from then on a cancel is refused."""
        return self.stock is Stock.SHIPPED


def declared_status(status: ShipmentStatus) -> StatusRules:
    """Every shipment status, with what it holds and what a cancel does to it."""
    match status:
        case ShipmentStatus.SCHEDULED:
            return StatusRules(Stock.RESERVED, OnCancel.RELEASE)
        case ShipmentStatus.SHIPPED | ShipmentStatus.DELIVERED:
            return StatusRules(Stock.SHIPPED, OnCancel.REFUSE)
        case ShipmentStatus.RELEASED | ShipmentStatus.OUT_OF_STOCK | ShipmentStatus.CANCELLED:
            return StatusRules(Stock.NONE, OnCancel.CONFIRM)
        case _:
            assert_never(status)


class StockMove(StrEnum):
    """What a carrier step does to the stock of the shipment's lines."""

    NONE = "none"  # the units stay where they are
    SHIP = "ship"  # the reserved units leave the shelf: reserved → shipped (`delivery.inventory.ship`)


class StepEvent(StrEnum):
    """The event a carrier step emits (`common/events/delivery.py`)."""

    SHIPPED = "Shipped"
    DELIVERED = "Delivered"


@dataclass(frozen=True)
class StepRules:
    """A carrier step: where the shipment must be, where it goes, and what making the step does."""

    required: ShipmentStatus
    reached: ShipmentStatus
    emits: StepEvent
    stock: StockMove
    new_tracking_code: bool  # the step gives the parcel its tracking code (else it keeps the one it has)
    made_by: str  # the column of `shipments` that records who made the step
    auto_progress: bool  # in demo mode, the sweep makes this step on its own
    # The step in the carrier API's words (`delivery/api.py` serves one route per step): what the carrier
    # did, the answer once it is done, and why a shipment elsewhere cannot take it.
    carrier_did: str
    done: str
    not_ready: str


def declared_step(carrier_step: CarrierStep) -> StepRules:
    """Every carrier step, with its statuses, its event, its stock move, its who-made-it column and its
    words in the carrier API."""
    match carrier_step:
        case CarrierStep.SHIP:
            return StepRules(
                required=ShipmentStatus.SCHEDULED,
                reached=ShipmentStatus.SHIPPED,
                emits=StepEvent.SHIPPED,
                stock=StockMove.SHIP,
                new_tracking_code=True,
                made_by="shipped_by",
                auto_progress=True,
                carrier_did="picked up",
                done="shipped",
                not_ready="the shipment is not scheduled",
            )
        case CarrierStep.DELIVER:
            return StepRules(
                required=ShipmentStatus.SHIPPED,
                reached=ShipmentStatus.DELIVERED,
                emits=StepEvent.DELIVERED,
                stock=StockMove.NONE,
                new_tracking_code=False,
                made_by="delivered_by",
                auto_progress=True,
                carrier_did="delivered",
                done="delivered",
                not_ready="the shipment has not shipped",
            )
        case _:
            assert_never(carrier_step)


# Built on import: a member without a declaration stops the service (and every test) from starting.
STATUSES: Mapping[ShipmentStatus, StatusRules] = MappingProxyType(
    {status: declared_status(status) for status in ShipmentStatus}
)
STEPS: Mapping[CarrierStep, StepRules] = MappingProxyType(
    {carrier_step: declared_step(carrier_step) for carrier_step in CarrierStep}
)


@dataclass(frozen=True)
class Move:
    """Make the step: the shipment goes to `to` (and the stock moves as the step declares)."""

    to: ShipmentStatus


@dataclass(frozen=True)
class AlreadyDone:
    """The step was made before (a retried carrier call): nothing to do, nothing to emit."""


@dataclass(frozen=True)
class StepConflict:
    """The shipment is not where the step needs it (e.g. shipping a released reservation)."""

    why: str


def step(status: ShipmentStatus | str, carrier_step: CarrierStep) -> Move | AlreadyDone | StepConflict:
    """The carrier's `carrier_step` on a shipment in `status`: idempotent, and only in sequence."""
    rules = STEPS[carrier_step]
    current = ShipmentStatus(status)
    if current is rules.reached:
        return AlreadyDone()
    if current is not rules.required:
        return StepConflict(f"shipment is {current.value}; {carrier_step.value} needs {rules.required.value}")
    return Move(rules.reached)


# The statuses the demo sweep finds work in: those an auto-progress step starts from.
SWEPT: tuple[ShipmentStatus, ...] = tuple(rules.required for rules in STEPS.values() if rules.auto_progress)


def sweep_steps(status: ShipmentStatus | str, *, due_at_once: bool) -> tuple[CarrierStep, ...]:
    """The steps the demo sweep makes, in order, on a shipment it found due in `status`: the
    auto-progress step that starts there and, when a shipment is due as soon as it moves (no delay), the
    auto-progress steps that follow it, since a step stamps the shipment with the sweep's own time.
    With a delay a shipment makes one step per sweep, and waits the delay before the next."""
    current = ShipmentStatus(status)
    steps: list[CarrierStep] = []
    for carrier_step in CarrierStep:  # the carrier's order: each step starts where the one before ends
        rules = STEPS[carrier_step]
        if not rules.auto_progress or rules.required is not current:
            continue
        steps.append(carrier_step)
        current = rules.reached
        if not due_at_once:
            break
    return tuple(steps)


@dataclass(frozen=True)
class Confirm:
    """The order will never ship: return what is reserved (if anything) and say so."""

    release: bool  # the reservation goes back on the shelf
    to: ShipmentStatus | None  # the shipment's new status; None: unchanged (None also for no shipment)
    remember: bool = False  # no shipment yet: keep a CANCELLED one so a late OrderPlaced reserves nothing


@dataclass(frozen=True)
class Refuse:
    """Too late: the parcel has left. The order completes and the money is kept."""

    why: str


def answer_cancel(status: ShipmentStatus | str | None) -> Confirm | Refuse:
    """Delivery's answer to an order's cancel, given its shipment's status (None: no shipment yet), as
    that status declares it."""
    if status is None:
        return Confirm(release=False, to=ShipmentStatus.CANCELLED, remember=True)
    current = ShipmentStatus(status)
    on_cancel = STATUSES[current].on_cancel
    match on_cancel:
        case OnCancel.RELEASE:
            return Confirm(release=True, to=ShipmentStatus.RELEASED)
        case OnCancel.CONFIRM:
            return Confirm(release=False, to=None)
        case OnCancel.REFUSE:
            return Refuse(f"the parcel has already shipped (shipment {current.value})")
        case _:
            assert_never(on_cancel)
