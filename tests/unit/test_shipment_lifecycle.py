"""A shipment's lifecycle: the carrier's steps and delivery's answer to a cancel, as tables."""

from __future__ import annotations

import pytest

from delivery.lifecycle import (
    AlreadyDone,
    CarrierStep,
    Confirm,
    Move,
    Refuse,
    ShipmentStatus,
    StepConflict,
    answer_cancel,
    step,
)

S = ShipmentStatus


@pytest.mark.parametrize(
    ("status", "carrier_step", "expected"),
    [
        (S.SCHEDULED, CarrierStep.SHIP, Move(S.SHIPPED)),
        (S.SHIPPED, CarrierStep.SHIP, AlreadyDone()),
        (S.DELIVERED, CarrierStep.SHIP, StepConflict("shipment is DELIVERED; ship needs SCHEDULED")),
        (S.RELEASED, CarrierStep.SHIP, StepConflict("shipment is RELEASED; ship needs SCHEDULED")),
        (S.OUT_OF_STOCK, CarrierStep.SHIP, StepConflict("shipment is OUT_OF_STOCK; ship needs SCHEDULED")),
        (S.CANCELLED, CarrierStep.SHIP, StepConflict("shipment is CANCELLED; ship needs SCHEDULED")),
        (S.SHIPPED, CarrierStep.DELIVER, Move(S.DELIVERED)),
        (S.DELIVERED, CarrierStep.DELIVER, AlreadyDone()),
        (S.SCHEDULED, CarrierStep.DELIVER, StepConflict("shipment is SCHEDULED; deliver needs SHIPPED")),
        (S.RELEASED, CarrierStep.DELIVER, StepConflict("shipment is RELEASED; deliver needs SHIPPED")),
    ],
)
def test_the_carrier_steps_in_sequence_and_a_repeated_step_is_already_done(
    status: ShipmentStatus, carrier_step: CarrierStep, expected: object
) -> None:
    assert step(status, carrier_step) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        # Not seen yet: remember the cancel, so a late OrderPlaced reserves nothing.
        (None, Confirm(release=False, to=S.CANCELLED, remember=True)),
        (S.SCHEDULED, Confirm(release=True, to=S.RELEASED)),
        (S.OUT_OF_STOCK, Confirm(release=False, to=None)),
        (S.RELEASED, Confirm(release=False, to=None)),
        (S.CANCELLED, Confirm(release=False, to=None)),
        (S.SHIPPED, Refuse("the parcel has already shipped (shipment SHIPPED)")),
        (S.DELIVERED, Refuse("the parcel has already shipped (shipment DELIVERED)")),
    ],
)
def test_delivery_confirms_a_cancel_until_the_parcel_ships_and_refuses_it_after(
    status: ShipmentStatus | None, expected: Confirm | Refuse
) -> None:
    assert answer_cancel(status) == expected


def test_a_status_read_from_the_database_as_text_is_accepted() -> None:
    assert answer_cancel("SHIPPED") == Refuse("the parcel has already shipped (shipment SHIPPED)")
    assert step("SCHEDULED", CarrierStep.SHIP) == Move(S.SHIPPED)
