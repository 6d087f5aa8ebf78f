"""Properties of the order saga over any sequence of inputs (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from order.saga import Emit, OrderStatus, Outcome, SagaInput, decide, is_terminal

inputs = st.lists(st.sampled_from(list(SagaInput)), max_size=30)


def run(events: list[SagaInput]) -> tuple[OrderStatus | None, list[Emit], list[OrderStatus | None]]:
    status: OrderStatus | None = None
    emitted: list[Emit] = []
    history: list[OrderStatus | None] = [None]
    for event in events:
        decision = decide(status, event)
        if decision.outcome is not Outcome.APPLIED:
            assert decision.new_status == status and not decision.emits
        status = decision.new_status
        emitted.extend(emission.kind for emission in decision.emits)
        history.append(status)
    return status, emitted, history


@given(inputs)
def test_any_sequence_leaves_a_legal_status(events: list[SagaInput]) -> None:
    status, _, _ = run(events)
    assert status is None or isinstance(status, OrderStatus)


@given(inputs)
def test_a_terminal_order_never_changes_again(events: list[SagaInput]) -> None:
    _, _, history = run(events)
    for index, status in enumerate(history):
        if is_terminal(status):
            assert set(history[index:]) == {status}


@given(inputs)
def test_each_order_event_is_emitted_at_most_once(events: list[SagaInput]) -> None:
    _, emitted, _ = run(events)
    for kind in Emit:
        assert emitted.count(kind) <= 1


@given(inputs)
def test_a_cancelled_order_never_completes(events: list[SagaInput]) -> None:
    _, emitted, history = run(events)
    if Emit.ORDER_CANCELLED in emitted:
        assert OrderStatus.COMPLETED not in history
        assert Emit.ORDER_COMPLETED not in emitted


@given(inputs, st.lists(st.sampled_from([SagaInput.PAYMENT_REFUND_FAILED]), max_size=3))
def test_every_cancelled_paid_order_ends_refunded_once_the_refund_arrives(
    events: list[SagaInput], refund_failures: list[SagaInput]
) -> None:
    status, emitted, _ = run(events)
    if Emit.ORDER_CANCELLED not in emitted or status is OrderStatus.REFUNDED:
        return
    for event in [*refund_failures, SagaInput.PAYMENT_REFUNDED]:
        status = decide(status, event).new_status
    assert status is OrderStatus.REFUNDED


@given(inputs)
def test_only_a_completed_payment_places_an_order(events: list[SagaInput]) -> None:
    _, emitted, history = run(events)
    if Emit.ORDER_PLACED in emitted:
        first_placed = history.index(OrderStatus.PLACED)
        assert events[first_placed - 1] is SagaInput.PAYMENT_COMPLETED


@given(inputs)
def test_a_shipped_order_is_never_cancelled_so_never_refunded(events: list[SagaInput]) -> None:
    """The pivot: once the saga saw Shipped, nothing it emits can lead to a refund."""
    emitted_after: list[Emit] = []
    status: OrderStatus | None = None
    for event in events:
        decision = decide(status, event)
        if status in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
            emitted_after.extend(emission.kind for emission in decision.emits)
        status = decision.new_status
    assert Emit.ORDER_CANCELLED not in emitted_after
    assert Emit.ORDER_CANCELLATION_REQUESTED not in emitted_after


@given(inputs)
def test_a_customer_or_deadline_cancel_refunds_only_after_delivery_confirmed(events: list[SagaInput]) -> None:
    """OrderCancelled follows either delivery's OutOfStock or its CancellationConfirmed, never a request
    alone."""
    status: OrderStatus | None = None
    for event in events:
        decision = decide(status, event)
        if any(emission.kind is Emit.ORDER_CANCELLED for emission in decision.emits):
            assert event in (SagaInput.OUT_OF_STOCK, SagaInput.CANCELLATION_CONFIRMED)
        status = decision.new_status
