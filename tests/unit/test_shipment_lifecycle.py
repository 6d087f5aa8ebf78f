"""A shipment's lifecycle: the carrier's steps and delivery's answer to a cancel, as tables; and the
declarations of every status and step (`delivery/lifecycle.py`) agreeing with each other."""

from __future__ import annotations

import itertools
import re
from typing import assert_never

import pytest

from delivery import models
from delivery.lifecycle import (
    STATUSES,
    STEPS,
    SWEPT,
    AlreadyDone,
    CarrierStep,
    Confirm,
    Move,
    OnCancel,
    Refuse,
    ShipmentStatus,
    StepConflict,
    Stock,
    StockMove,
    answer_cancel,
    step,
    sweep_steps,
)

S = ShipmentStatus


# Every (status, step) pair: what the carrier's step does to a shipment in that status.
STEP_CASES = [
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
    (S.OUT_OF_STOCK, CarrierStep.DELIVER, StepConflict("shipment is OUT_OF_STOCK; deliver needs SHIPPED")),
    (S.CANCELLED, CarrierStep.DELIVER, StepConflict("shipment is CANCELLED; deliver needs SHIPPED")),
]

# Every status (None: no shipment yet): delivery's answer to a cancel.
CANCEL_CASES = [
    # Not seen yet: remember the cancel, so a late OrderPlaced reserves nothing.
    (None, Confirm(release=False, to=S.CANCELLED, remember=True)),
    (S.SCHEDULED, Confirm(release=True, to=S.RELEASED)),
    (S.OUT_OF_STOCK, Confirm(release=False, to=None)),
    (S.RELEASED, Confirm(release=False, to=None)),
    (S.CANCELLED, Confirm(release=False, to=None)),
    (S.SHIPPED, Refuse("the parcel has already shipped (shipment SHIPPED)")),
    (S.DELIVERED, Refuse("the parcel has already shipped (shipment DELIVERED)")),
]


@pytest.mark.parametrize(("status", "carrier_step", "expected"), STEP_CASES)
def test_the_carrier_steps_in_sequence_and_a_repeated_step_is_already_done(
    status: ShipmentStatus, carrier_step: CarrierStep, expected: object
) -> None:
    assert step(status, carrier_step) == expected


@pytest.mark.parametrize(("status", "expected"), CANCEL_CASES)
def test_delivery_confirms_a_cancel_until_the_parcel_ships_and_refuses_it_after(
    status: ShipmentStatus | None, expected: Confirm | Refuse
) -> None:
    assert answer_cancel(status) == expected


def test_the_cases_above_name_every_status_with_every_step_and_with_a_cancel() -> None:
    """A new status or step enters these tables by hand, with its expected answers: until then, this fails."""
    assert sorted((status, carrier_step) for status, carrier_step, _ in STEP_CASES) == sorted(
        itertools.product(ShipmentStatus, CarrierStep)
    )
    cancelled = [status for status, _ in CANCEL_CASES]
    assert len(cancelled) == len(set(cancelled))
    assert set(cancelled) == {None, *ShipmentStatus}


def test_the_carrier_steps_form_one_chain_from_scheduled_in_the_carriers_order() -> None:
    """Each step needs the status the step before it reaches (the first needs SCHEDULED): a step put in
    between changes what the next one requires."""
    reached = [S.SCHEDULED]
    for carrier_step in CarrierStep:
        assert STEPS[carrier_step].required is reached[-1], f"{carrier_step} must need {reached[-1]}"
        reached.append(STEPS[carrier_step].reached)
    assert len(set(reached)) == len(reached), f"a step goes back to where the parcel was: {reached}"


@pytest.mark.parametrize("carrier_step", list(CarrierStep))
def test_each_step_moves_the_stock_as_its_two_statuses_hold_it(carrier_step: CarrierStep) -> None:
    rules = STEPS[carrier_step]
    before, after = STATUSES[rules.required].stock, STATUSES[rules.reached].stock
    match rules.stock:
        case StockMove.SHIP:
            assert (before, after) == (Stock.RESERVED, Stock.SHIPPED)
        case StockMove.NONE:
            assert before is after
        case _:
            assert_never(rules.stock)


@pytest.mark.parametrize("status", list(ShipmentStatus))
def test_a_cancel_releases_a_reservation_confirms_when_nothing_is_held_and_refuses_once_it_left(
    status: ShipmentStatus,
) -> None:
    expected = {
        Stock.RESERVED: OnCancel.RELEASE,
        Stock.NONE: OnCancel.CONFIRM,
        Stock.SHIPPED: OnCancel.REFUSE,
    }
    assert STATUSES[status].on_cancel is expected[STATUSES[status].stock]
    assert STATUSES[status].left_the_warehouse is (STATUSES[status].stock is Stock.SHIPPED)


def test_a_confirmed_cancel_leaves_a_shipment_that_holds_nothing() -> None:
    for answer in (answer_cancel(None), answer_cancel(S.SCHEDULED)):
        assert isinstance(answer, Confirm) and answer.to is not None
        assert STATUSES[answer.to].stock is Stock.NONE


def test_every_status_is_where_an_order_placed_a_cancel_or_a_carrier_step_puts_a_shipment() -> None:
    placed = {S.SCHEDULED, S.OUT_OF_STOCK}  # delivery/handlers.py, on_order_placed
    cancelled = {
        answer.to for answer in map(answer_cancel, [None, *ShipmentStatus]) if isinstance(answer, Confirm)
    }
    stepped = {rules.reached for rules in STEPS.values()}
    assert placed | (cancelled - {None}) | stepped == set(ShipmentStatus)


def test_each_step_records_who_made_it_in_a_column_of_its_own() -> None:
    columns = [rules.made_by for rules in STEPS.values()]
    assert len(set(columns)) == len(columns)
    assert set(columns) <= set(models.shipments.c.keys())


def test_the_sweeps_index_covers_exactly_the_statuses_the_sweep_looks_in() -> None:
    """`ix_shipments_in_transit_updated` is partial: a status it leaves out makes the sweep scan every
    shipment ever made."""
    (index,) = [
        index for index in models.shipments.indexes if index.name == "ix_shipments_in_transit_updated"
    ]
    where = str(index.dialect_options["postgresql"]["where"])
    swept = {rules.required.value for rules in STEPS.values() if rules.auto_progress}
    assert set(re.findall(r"'(\w+)'", where)) == swept
    assert {status.value for status in SWEPT} == swept


@pytest.mark.parametrize(
    ("status", "due_at_once", "steps"),
    [
        (S.SCHEDULED, True, (CarrierStep.SHIP, CarrierStep.DELIVER)),
        (S.SCHEDULED, False, (CarrierStep.SHIP,)),
        (S.SHIPPED, True, (CarrierStep.DELIVER,)),
        (S.SHIPPED, False, (CarrierStep.DELIVER,)),
        (S.DELIVERED, True, ()),
        (S.RELEASED, True, ()),
        (S.OUT_OF_STOCK, True, ()),
        (S.CANCELLED, True, ()),
    ],
)
def test_the_sweep_takes_a_due_shipment_to_the_end_with_no_delay_and_one_step_with_a_delay(
    status: ShipmentStatus, due_at_once: bool, steps: tuple[CarrierStep, ...]
) -> None:
    assert sweep_steps(status, due_at_once=due_at_once) == steps


def test_a_status_read_from_the_database_as_text_is_accepted() -> None:
    assert answer_cancel("SHIPPED") == Refuse("the parcel has already shipped (shipment SHIPPED)")
    assert step("SCHEDULED", CarrierStep.SHIP) == Move(S.SHIPPED)
