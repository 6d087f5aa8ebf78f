"""The order in which a rebuild feeds recorded events to the order saga."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from order.handlers import INPUT_OF
from order.replay_order import RecordedEvent, saga_steps
from order.saga import SagaInput, decide

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def event(
    topic: str, type_: str, seconds: float, order_id: str = "o-1", reason: str | None = None
) -> RecordedEvent:
    return RecordedEvent(topic, type_, order_id, T0 + timedelta(seconds=seconds), reason)


def replayed_status(events: list[RecordedEvent]) -> str | None:
    status = None
    for step in saga_steps(events, INPUT_OF):
        saga_input = step.saga_input or INPUT_OF[step.event.type]
        status = decide(status, saga_input).new_status
    return status


def test_order_own_outputs_are_not_inputs_and_inputs_go_by_time() -> None:
    events = [
        event("delivery", "DeliveryScheduled", 2),
        event("order", "OrderPlaced", 1),
        event("payment", "PaymentCompleted", 0),
        event("order", "OrderCancelled", 3, reason="out_of_stock"),
    ]
    steps = saga_steps(events, INPUT_OF)
    assert [s.event.type for s in steps] == ["PaymentCompleted", "DeliveryScheduled"]
    assert all(s.saga_input is None for s in steps)


def test_a_deadline_that_crossed_delivery_answer_in_flight_asks_delivery_which_confirms() -> None:
    # Delivery scheduled at t=5, but order expired the deadline at t=6 before it consumed that answer.
    events = [
        event("payment", "PaymentCompleted", 0),
        event("delivery", "DeliveryScheduled", 5),
        event("order", "OrderCancellationRequested", 6, reason="timeout"),
        event("delivery", "CancellationConfirmed", 7),
        event("order", "OrderCancelled", 8, reason="timeout"),
        event("payment", "PaymentRefunded", 9),
    ]
    steps = saga_steps(events, INPUT_OF)
    assert [s.saga_input or s.event.type for s in steps] == [
        "PaymentCompleted",
        SagaInput.DEADLINE_EXPIRED,
        "DeliveryScheduled",
        "CancellationConfirmed",
        "PaymentRefunded",
    ]
    assert replayed_status(events) == "REFUNDED"


def test_a_cancel_that_delivery_refused_because_it_shipped_replays_to_completed() -> None:
    events = [
        event("payment", "PaymentCompleted", 0),
        event("delivery", "DeliveryScheduled", 1),
        event("delivery", "Shipped", 2),
        event("order", "OrderCancellationRequested", 3, reason="customer"),
        event("delivery", "CancellationRefused", 4),
        event("delivery", "Delivered", 5),
    ]
    assert replayed_status(events) == "COMPLETED"


def test_a_customer_cancel_that_crossed_an_out_of_stock_is_cancelled_for_the_stock() -> None:
    events = [
        event("payment", "PaymentCompleted", 0),
        event("delivery", "OutOfStock", 2),
        event("order", "OrderCancellationRequested", 3, reason="customer"),
        event("delivery", "CancellationConfirmed", 4),
        event("order", "OrderCancelled", 5, reason="out_of_stock"),
        event("payment", "PaymentRefunded", 6),
    ]
    steps = saga_steps(events, INPUT_OF)
    assert [s.saga_input or s.event.type for s in steps] == [
        "PaymentCompleted",
        SagaInput.CANCEL_REQUESTED,
        "OutOfStock",
        "CancellationConfirmed",
        "PaymentRefunded",
    ]
    assert replayed_status(events) == "REFUNDED"


def test_a_cancel_from_before_delivery_decided_cancels_replays_as_requested_then_confirmed() -> None:
    # Topics written by the earlier version: order cancelled on its own, no request, no answer.
    events = [
        event("payment", "PaymentCompleted", 0),
        event("delivery", "DeliveryScheduled", 2),
        event("order", "OrderCancelled", 3, reason="customer"),
        event("payment", "PaymentRefunded", 4),
    ]
    steps = saga_steps(events, INPUT_OF)
    assert [s.saga_input or s.event.type for s in steps] == [
        "PaymentCompleted",
        SagaInput.CANCEL_REQUESTED,
        SagaInput.CANCELLATION_CONFIRMED,
        "DeliveryScheduled",
        "PaymentRefunded",
    ]
    assert replayed_status(events) == "REFUNDED"


def test_events_of_different_orders_interleave_by_time() -> None:
    events = [
        event("payment", "PaymentCompleted", 1, order_id="b"),
        event("payment", "PaymentCompleted", 0, order_id="a"),
        event("delivery", "Shipped", 3, order_id="a"),
        event("delivery", "DeliveryScheduled", 2, order_id="a"),
    ]
    assert [(s.event.order_id, s.event.type) for s in saga_steps(events, INPUT_OF)] == [
        ("a", "PaymentCompleted"),
        ("b", "PaymentCompleted"),
        ("a", "DeliveryScheduled"),
        ("a", "Shipped"),
    ]
