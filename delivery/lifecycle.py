"""A shipment's lifecycle as pure rules: the carrier's steps, and delivery's answer to a cancel.

    (none) ─OrderPlaced→ SCHEDULED (stock reserved) | OUT_OF_STOCK (nothing reserved)
    SCHEDULED ─ship→ SHIPPED ─deliver→ DELIVERED
    SCHEDULED ─cancel→ RELEASED (stock back on the shelf)
    (none) ─cancel→ CANCELLED (the cancel came first: nothing will ever be reserved)

Shipping is the saga's pivot: once a parcel has left, a cancel is refused. Delivery owns the shipment,
so it alone decides whether an order can still be cancelled; a ship step and a cancel of the same order
are serialised by the shipment's row lock, so exactly one of them wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ShipmentStatus(StrEnum):
    SCHEDULED = "SCHEDULED"  # stock reserved
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RELEASED = "RELEASED"  # cancelled after reserving; stock returned
    OUT_OF_STOCK = "OUT_OF_STOCK"  # nothing reserved
    CANCELLED = "CANCELLED"  # the cancel arrived before the order: nothing will be reserved


class CarrierStep(StrEnum):
    SHIP = "ship"
    DELIVER = "deliver"


@dataclass(frozen=True)
class Move:
    """Make the step: the shipment goes to `to` (and, for SHIP, its reserved units leave the shelf)."""

    to: ShipmentStatus


@dataclass(frozen=True)
class AlreadyDone:
    """The step was made before (a retried carrier call): nothing to do, nothing to emit."""


@dataclass(frozen=True)
class StepConflict:
    """The shipment is not where the step needs it (e.g. shipping a released reservation)."""

    why: str


_CARRIER: dict[CarrierStep, tuple[ShipmentStatus, ShipmentStatus]] = {
    CarrierStep.SHIP: (ShipmentStatus.SCHEDULED, ShipmentStatus.SHIPPED),
    CarrierStep.DELIVER: (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED),
}


def required_for(carrier_step: CarrierStep) -> ShipmentStatus:
    """The status a shipment must have for the carrier to make `carrier_step`."""
    return _CARRIER[carrier_step][0]


def reached_by(carrier_step: CarrierStep) -> ShipmentStatus:
    """The status a shipment has once the carrier made `carrier_step`."""
    return _CARRIER[carrier_step][1]


def step(status: ShipmentStatus | str, carrier_step: CarrierStep) -> Move | AlreadyDone | StepConflict:
    """The carrier's `carrier_step` on a shipment in `status`: idempotent, and only in sequence."""
    required, target = _CARRIER[carrier_step]
    current = ShipmentStatus(status)
    if current is target:
        return AlreadyDone()
    if current is not required:
        return StepConflict(f"shipment is {current.value}; {carrier_step.value} needs {required.value}")
    return Move(target)


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
    """Delivery's answer to an order's cancel, given its shipment's status (None: no shipment yet)."""
    if status is None:
        return Confirm(release=False, to=ShipmentStatus.CANCELLED, remember=True)
    current = ShipmentStatus(status)
    if current is ShipmentStatus.SCHEDULED:
        return Confirm(release=True, to=ShipmentStatus.RELEASED)
    if current in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED):
        return Refuse(f"the parcel has already shipped (shipment {current.value})")
    return Confirm(release=False, to=None)  # out of stock, released or cancelled: nothing is held
