"""Every (status, input) pair of the order saga, written out as the business expects it."""

from __future__ import annotations

import itertools

import pytest

from order.saga import (
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

S, E = OrderStatus, SagaInput
PLACE = (Emission(Emit.ORDER_PLACED),)
COMPLETE = (Emission(Emit.ORDER_COMPLETED),)


def cancel(reason: CancelReason) -> tuple[Emission, ...]:
    return (Emission(Emit.ORDER_CANCELLED, reason),)


APPLIED = {
    (None, E.PAYMENT_COMPLETED): (S.PLACED, PLACE),
    (None, E.PAYMENT_FAILED): (S.REJECTED, ()),
    (S.PLACED, E.DELIVERY_SCHEDULED): (S.SCHEDULED, ()),
    (S.PLACED, E.OUT_OF_STOCK): (S.CANCELLED, cancel(CancelReason.OUT_OF_STOCK)),
    (S.PLACED, E.CANCEL_REQUESTED): (S.CANCELLED, cancel(CancelReason.CUSTOMER)),
    (S.PLACED, E.DEADLINE_EXPIRED): (S.CANCELLED, cancel(CancelReason.TIMEOUT)),
    (S.SCHEDULED, E.SHIPPED): (S.SHIPPED, ()),
    (S.SCHEDULED, E.CANCEL_REQUESTED): (S.CANCELLED, cancel(CancelReason.CUSTOMER)),
    (S.SHIPPED, E.DELIVERED): (S.COMPLETED, COMPLETE),
    (S.CANCELLED, E.PAYMENT_REFUNDED): (S.REFUNDED, ()),
    (S.CANCELLED, E.PAYMENT_REFUND_FAILED): (S.REFUND_FAILED, ()),
    (S.REFUND_FAILED, E.PAYMENT_REFUNDED): (S.REFUNDED, ()),
}

CANCELLED_LIKE = (S.CANCELLED, S.REFUND_FAILED, S.REFUNDED)
IGNORED = {
    # Duplicates of the event that got the order where it is.
    *[
        (status, E.PAYMENT_COMPLETED)
        for status in (S.PLACED, S.SCHEDULED, S.SHIPPED, S.COMPLETED, *CANCELLED_LIKE)
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
    # A cancelled order: delivery's late answers, more cancels and deadlines change nothing.
    *[
        (status, event)
        for status in CANCELLED_LIKE
        for event in (E.DELIVERY_SCHEDULED, E.OUT_OF_STOCK, E.CANCEL_REQUESTED, E.DEADLINE_EXPIRED)
    ],
}

ALL_PAIRS = list(itertools.product([None, *OrderStatus], SagaInput))


@pytest.mark.parametrize(("status", "event"), ALL_PAIRS, ids=lambda v: str(v))
def test_every_pair_has_the_business_outcome(status: OrderStatus | None, event: SagaInput) -> None:
    decision = decide(status, event)
    if (status, event) in APPLIED:
        new_status, emits = APPLIED[(status, event)]
        assert decision == Decision(Outcome.APPLIED, new_status, emits)
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


def test_an_event_for_an_order_that_does_not_exist_is_rejected() -> None:
    decision = decide(None, E.DELIVERED)
    assert decision.outcome is Outcome.REJECTED
    assert "does not exist" in decision.reason


def test_a_status_read_from_the_database_as_text_is_accepted() -> None:
    assert decide("PLACED", E.DELIVERY_SCHEDULED).new_status is S.SCHEDULED


@pytest.mark.parametrize(
    ("status", "terminal", "cancellable"),
    [
        (None, False, False),
        (S.PLACED, False, True),
        (S.SCHEDULED, False, True),
        (S.SHIPPED, False, False),
        (S.COMPLETED, True, False),
        (S.REJECTED, True, False),
        (S.CANCELLED, False, False),
        (S.REFUND_FAILED, False, False),
        (S.REFUNDED, True, False),
    ],
)
def test_terminal_and_cancellable_statuses(
    status: OrderStatus | None, terminal: bool, cancellable: bool
) -> None:
    assert is_terminal(status) is terminal
    assert can_cancel(status) is cancellable


@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_status_but_a_terminal_one_says_what_it_waits_for(status: OrderStatus) -> None:
    assert (awaiting(status) is None) == is_terminal(status)
