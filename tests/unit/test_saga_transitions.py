"""Every (status, input) pair of the order saga, written out as the business expects it."""

from __future__ import annotations

import itertools

import pytest

from order.saga import (
    COMPENSATIONS,
    CREATING_INPUTS,
    Cancellation,
    CancelReason,
    Decision,
    Emission,
    Emit,
    OrderStatus,
    Outcome,
    SagaInput,
    awaiting,
    can_cancel,
    decide,
    is_terminal,
)

S, E, C = OrderStatus, SagaInput, Cancellation
PLACE = (Emission(Emit.ORDER_PLACED),)
COMPLETE = (Emission(Emit.ORDER_COMPLETED),)


def cancel(reason: CancelReason | None) -> tuple[Emission, ...]:
    return (Emission(Emit.ORDER_CANCELLED, reason),)


def ask_delivery(reason: CancelReason) -> tuple[Emission, ...]:
    return (Emission(Emit.ORDER_CANCELLATION_REQUESTED, reason),)


# (status, input): (new status, emitted, the cancellation's new state or None for unchanged)
APPLIED = {
    (None, E.PAYMENT_COMPLETED): (S.PLACED, PLACE, None),
    (None, E.PAYMENT_FAILED): (S.REJECTED, (), None),
    (S.PLACED, E.DELIVERY_SCHEDULED): (S.SCHEDULED, (), None),
    (S.PLACED, E.OUT_OF_STOCK): (S.CANCELLED, cancel(CancelReason.OUT_OF_STOCK), None),
    # A customer or the deadline never cancels on its own: it asks delivery, which owns the pivot.
    (S.PLACED, E.CANCEL_REQUESTED): (S.CANCELLING, ask_delivery(CancelReason.CUSTOMER), C.REQUESTED),
    (S.PLACED, E.DEADLINE_EXPIRED): (S.CANCELLING, ask_delivery(CancelReason.TIMEOUT), C.REQUESTED),
    (S.SCHEDULED, E.SHIPPED): (S.SHIPPED, (), None),
    (S.SCHEDULED, E.CANCEL_REQUESTED): (S.CANCELLING, ask_delivery(CancelReason.CUSTOMER), C.REQUESTED),
    # Delivery's answer decides; only a confirmed cancel (or its own OutOfStock) leads to a refund.
    (S.CANCELLING, E.CANCELLATION_CONFIRMED): (S.CANCELLED, cancel(None), C.CONFIRMED),
    (S.CANCELLING, E.OUT_OF_STOCK): (S.CANCELLED, cancel(CancelReason.OUT_OF_STOCK), C.CONFIRMED),
    (S.CANCELLING, E.SHIPPED): (S.SHIPPED, (), None),
    (S.SHIPPED, E.CANCELLATION_REFUSED): (S.SHIPPED, (), C.REFUSED),
    (S.COMPLETED, E.CANCELLATION_REFUSED): (S.COMPLETED, (), C.REFUSED),
    (S.SHIPPED, E.DELIVERED): (S.COMPLETED, COMPLETE, None),
    (S.CANCELLED, E.PAYMENT_REFUNDED): (S.REFUNDED, (), None),
    (S.CANCELLED, E.PAYMENT_REFUND_FAILED): (S.REFUND_FAILED, (), None),
    (S.REFUND_FAILED, E.PAYMENT_REFUNDED): (S.REFUNDED, (), None),
}

CANCELLED_LIKE = (S.CANCELLED, S.REFUND_FAILED, S.REFUNDED)
IGNORED = {
    # Duplicates of the event that got the order where it is.
    *[
        (status, E.PAYMENT_COMPLETED)
        for status in (S.PLACED, S.SCHEDULED, S.CANCELLING, S.SHIPPED, S.COMPLETED, *CANCELLED_LIKE)
    ],
    (S.REJECTED, E.PAYMENT_FAILED),
    (S.SCHEDULED, E.DELIVERY_SCHEDULED),
    (S.SHIPPED, E.DELIVERY_SCHEDULED),
    (S.COMPLETED, E.DELIVERY_SCHEDULED),
    (S.SHIPPED, E.SHIPPED),
    (S.COMPLETED, E.SHIPPED),
    (S.COMPLETED, E.DELIVERED),
    (S.REFUND_FAILED, E.PAYMENT_REFUND_FAILED),
    (S.REFUNDED, E.PAYMENT_REFUNDED),
    # The deadline only matters while delivery has not answered.
    (S.SCHEDULED, E.DEADLINE_EXPIRED),
    (S.SHIPPED, E.DEADLINE_EXPIRED),
    (S.COMPLETED, E.DEADLINE_EXPIRED),
    # A cancellation under way: delivery's reservation (made before it saw the request), a second cancel
    # and the deadline wait for delivery's answer.
    (S.CANCELLING, E.DELIVERY_SCHEDULED),
    (S.CANCELLING, E.CANCEL_REQUESTED),
    (S.CANCELLING, E.DEADLINE_EXPIRED),
    # A cancelled order: delivery's late answers (its confirmation after an OutOfStock), more cancels and
    # deadlines change nothing.
    *[
        (status, event)
        for status in CANCELLED_LIKE
        for event in (
            E.DELIVERY_SCHEDULED,
            E.OUT_OF_STOCK,
            E.CANCELLATION_CONFIRMED,
            E.CANCEL_REQUESTED,
            E.DEADLINE_EXPIRED,
        )
    ],
}

TERMINAL = {S.COMPLETED, S.REJECTED, S.REFUNDED}
ALL_PAIRS = list(itertools.product([None, *OrderStatus], SagaInput))


@pytest.mark.parametrize(("status", "event"), ALL_PAIRS, ids=lambda v: str(v))
def test_every_pair_has_the_business_outcome(status: OrderStatus | None, event: SagaInput) -> None:
    decision = decide(status, event)
    if (status, event) in APPLIED:
        new_status, emits, cancellation = APPLIED[(status, event)]
        assert decision == Decision(Outcome.APPLIED, new_status, emits, cancellation=cancellation)
    elif (status, event) in IGNORED:
        assert decision.outcome is Outcome.IGNORED
        assert decision.new_status == status and decision.emits == ()
        assert decision.reason
    else:
        assert decision.outcome is Outcome.REJECTED, f"{status} + {event} should be illegal"
        assert decision.new_status == status and decision.emits == ()
        assert decision.reason


def test_cancelling_after_shipment_is_rejected_as_too_late() -> None:
    for status in (S.SHIPPED, S.COMPLETED):
        decision = decide(status, E.CANCEL_REQUESTED)
        assert decision.outcome is Outcome.REJECTED
        assert "shipped" in decision.reason


@pytest.mark.parametrize("status", [S.PLACED, S.SCHEDULED, S.CANCELLING, S.SHIPPED])
def test_a_confirmation_is_the_only_way_from_a_requested_cancel_to_a_refund(status: OrderStatus) -> None:
    """The bug this table fixes: a parcel delivered and refunded. Only CANCELLING + delivery's confirmation
    (or its OutOfStock) emits OrderCancelled after a request; a confirmation anywhere else is illegal."""
    decision = decide(status, E.CANCELLATION_CONFIRMED)
    if status is S.CANCELLING:
        assert decision.emits == cancel(None)
    else:
        assert decision.outcome is Outcome.REJECTED


def test_a_refusal_before_shipped_is_illegal_because_delivery_sends_shipped_first() -> None:
    for status in (S.PLACED, S.SCHEDULED, S.CANCELLING, *CANCELLED_LIKE):
        assert decide(status, E.CANCELLATION_REFUSED).outcome is Outcome.REJECTED


def test_every_compensating_emission_names_who_undoes_what() -> None:
    """What the saga emits as it enters CANCELLING or CANCELLED is a compensation, and is in the map
    (tests/unit/test_compensations.py checks the map against the services' handlers)."""
    emitted_by_cancels = {
        emission.kind
        for status in [None, *OrderStatus]
        for event in SagaInput
        for decision in [decide(status, event)]
        if decision.new_status in (S.CANCELLING, S.CANCELLED) and decision.new_status is not status
        for emission in decision.emits
    }
    assert set(COMPENSATIONS) == emitted_by_cancels


def test_an_event_for_an_order_that_does_not_exist_is_rejected() -> None:
    decision = decide(None, E.DELIVERED)
    assert decision.outcome is Outcome.REJECTED
    assert "does not exist" in decision.reason


def test_a_status_read_from_the_database_as_text_is_accepted() -> None:
    assert decide("PLACED", E.DELIVERY_SCHEDULED).new_status is S.SCHEDULED


# Every status (None: no order yet): whether it is terminal, and whether the customer may ask to cancel.
STANDING_CASES = [
    (None, False, False),
    (S.PLACED, False, True),
    (S.SCHEDULED, False, True),
    (S.CANCELLING, False, True),
    (S.SHIPPED, False, False),
    (S.COMPLETED, True, False),
    (S.REJECTED, True, False),
    (S.CANCELLED, False, False),
    (S.REFUND_FAILED, False, False),
    (S.REFUNDED, True, False),
]


def test_the_cases_below_name_every_status() -> None:
    statuses = [status for status, _, _ in STANDING_CASES]
    assert len(statuses) == len(set(statuses))
    assert set(statuses) == {None, *OrderStatus}


@pytest.mark.parametrize(("status", "terminal", "cancellable"), STANDING_CASES)
def test_terminal_and_cancellable_statuses(
    status: OrderStatus | None, terminal: bool, cancellable: bool
) -> None:
    assert is_terminal(status) is terminal
    assert can_cancel(status) is cancellable


@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_status_but_a_terminal_one_says_what_it_waits_for(status: OrderStatus) -> None:
    assert (awaiting(status) is None) == is_terminal(status)


def _moves_out_of(status: OrderStatus | None) -> set[OrderStatus]:
    """The statuses an applied input takes an order in `status` to, other than `status` itself."""
    decisions = [decide(status, event) for event in SagaInput]
    return {
        d.new_status for d in decisions if d.outcome is Outcome.APPLIED and d.new_status not in (None, status)
    }


def test_every_status_is_reachable_from_no_order_through_the_rules() -> None:
    reached: set[OrderStatus] = set()
    frontier = _moves_out_of(None)
    while frontier:
        reached |= frontier
        frontier = {after for status in frontier for after in _moves_out_of(status)} - reached
    assert reached == set(OrderStatus)


@pytest.mark.parametrize("status", [status for status in OrderStatus if not is_terminal(status)])
def test_every_status_under_way_has_a_rule_leading_out_of_it(status: OrderStatus) -> None:
    assert _moves_out_of(status), f"a saga in {status} could never move on"


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_an_ended_saga_has_no_rule_leading_out_of_it(status: OrderStatus) -> None:
    assert _moves_out_of(status) == set()


@pytest.mark.parametrize("status", [None, *OrderStatus])
def test_a_cancel_is_heard_wherever_the_customer_may_ask_for_one_and_only_there(
    status: OrderStatus | None,
) -> None:
    """The declaration says where the customer may ask; the rules must hear the request there (apply it,
    or ignore it as already under way) and may apply it nowhere else."""
    outcome = decide(status, E.CANCEL_REQUESTED).outcome
    if can_cancel(status):
        assert outcome is not Outcome.REJECTED
    else:
        assert outcome is not Outcome.APPLIED


@pytest.mark.parametrize("event", list(SagaInput))
def test_every_input_has_a_rule_that_applies_it(event: SagaInput) -> None:
    assert any(decide(status, event).outcome is Outcome.APPLIED for status in [None, *OrderStatus])


def test_only_payments_answer_creates_an_order() -> None:
    assert {E.PAYMENT_COMPLETED, E.PAYMENT_FAILED} == CREATING_INPUTS
