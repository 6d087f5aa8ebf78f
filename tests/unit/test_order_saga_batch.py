"""A batch of saga inputs applied in memory (`order.saga_batch.apply_steps`): what is created, changed,
emitted and logged, without a database."""

from __future__ import annotations

import uuid
from datetime import timedelta

from common.events import Envelope, new_envelope
from common.events.delivery import CancellationConfirmed, DeliveryScheduled, Shipped
from common.events.payment import PaymentCompleted, PaymentFailed
from order.saga import Cancellation, OrderStatus, Outcome, SagaInput
from order.saga_batch import EARLY_CANCEL_DETAIL, OrderRow, SagaStep, apply_steps

ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
LINES = [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 500}]
DEADLINE = timedelta(seconds=30)


def paid(order_id: str) -> Envelope:
    payload = PaymentCompleted.model_validate(
        {
            "payment_id": uuid.uuid4(),
            "customer_id": "c-1",
            "amount": {"amount_minor": 1000, "currency": "EUR"},
            "lines": LINES,
            "shipping_address": ADDRESS,
        }
    )
    return new_envelope(payload, order_id=order_id, producer="payment")


def declined(order_id: str) -> Envelope:
    payload = PaymentFailed.model_validate(
        {
            "payment_id": uuid.uuid4(),
            "customer_id": "c-1",
            "amount": {"amount_minor": 1000, "currency": "EUR"},
            "reason": "card declined",
        }
    )
    return new_envelope(payload, order_id=order_id, producer="payment")


def from_delivery(order_id: str, payload: object) -> Envelope:
    return new_envelope(payload, order_id=order_id, producer="delivery")  # type: ignore[arg-type]


def step(order_id: str, saga_input: SagaInput, cause: Envelope | None = None) -> SagaStep:
    return SagaStep(order_id, saga_input, cause)


def row(order_id: str, status: OrderStatus, **changes: object) -> OrderRow:
    fields: dict[str, object] = {
        "order_id": order_id,
        "payment_id": uuid.uuid4(),
        "customer_id": "c-1",
        "status": status,
        "amount_minor": 1000,
        "currency": "EUR",
        "lines": LINES,
        "shipping_address": ADDRESS,
        **changes,
    }
    return OrderRow(**fields)  # type: ignore[arg-type]


def test_a_payment_creates_the_order_with_its_deadline_and_emits_order_placed() -> None:
    changes = apply_steps({}, [step("o-1", SagaInput.PAYMENT_COMPLETED, paid("o-1"))], deadline=DEADLINE)

    created = changes.created["o-1"]
    assert created.status is OrderStatus.PLACED and created.deadline_after == DEADLINE
    assert [e.type for e in changes.emitted] == ["OrderPlaced"]
    assert changes.emitted[0].payload["lines"] == LINES
    assert [(t.kind, t.event_type) for t in changes.timeline] == [
        ("received", "PaymentCompleted"),
        ("emitted", "OrderPlaced"),
    ]
    assert not changes.changed


def test_a_failed_payment_records_the_order_rejected_with_the_reason_and_no_deadline() -> None:
    changes = apply_steps({}, [step("o-1", SagaInput.PAYMENT_FAILED, declined("o-1"))], deadline=DEADLINE)

    created = changes.created["o-1"]
    assert created.status is OrderStatus.REJECTED
    assert created.cancel_reason == "card declined" and created.deadline_after is None
    assert changes.emitted == []


def test_later_inputs_of_an_order_in_the_same_batch_see_what_the_earlier_ones_did() -> None:
    steps = [
        step("o-1", SagaInput.PAYMENT_COMPLETED, paid("o-1")),
        step("o-1", SagaInput.DELIVERY_SCHEDULED, from_delivery("o-1", DeliveryScheduled(lines=LINES))),
    ]
    changes = apply_steps({}, steps, deadline=DEADLINE)

    assert changes.created["o-1"].status is OrderStatus.SCHEDULED  # inserted as it ends, not updated
    assert not changes.changed
    assert [result.decision.new_status for result in changes.results] == [
        OrderStatus.PLACED,
        OrderStatus.SCHEDULED,
    ]


def test_a_cancel_sent_before_the_order_existed_leaves_with_order_placed() -> None:
    changes = apply_steps(
        {}, [step("o-1", SagaInput.PAYMENT_COMPLETED, paid("o-1"))], deadline=DEADLINE, early_cancels={"o-1"}
    )

    created = changes.created["o-1"]
    assert created.status is OrderStatus.CANCELLING
    assert (created.cancel_reason, created.cancellation) == ("customer", Cancellation.REQUESTED)
    assert len(changes.results) == 1  # one result per given step; the early cancel rides on it
    assert [e.type for e in changes.results[0].emitted] == ["OrderPlaced", "OrderCancellationRequested"]
    assert changes.results[0].emitted[1].payload["reason"] == "customer"
    assert changes.early_cancels_applied == ["o-1"]
    requested = [t for t in changes.timeline if t.kind == "requested"]
    assert [(t.event_type, t.detail) for t in requested] == [("CANCEL_REQUESTED", EARLY_CANCEL_DETAIL)]


def test_an_early_cancel_of_a_failed_payment_is_rejected_on_the_timeline_and_taken() -> None:
    changes = apply_steps(
        {}, [step("o-1", SagaInput.PAYMENT_FAILED, declined("o-1"))], deadline=DEADLINE, early_cancels={"o-1"}
    )

    assert changes.created["o-1"].status is OrderStatus.REJECTED
    assert changes.early_cancels_applied == ["o-1"]
    assert [t.kind for t in changes.timeline] == ["received", "rejected"]


def test_a_confirmed_cancel_emits_order_cancelled_with_the_reason_it_was_requested_for() -> None:
    order = row("o-1", OrderStatus.CANCELLING, cancel_reason="timeout", cancellation=Cancellation.REQUESTED)
    confirmed = from_delivery("o-1", CancellationConfirmed())
    changes = apply_steps(
        {"o-1": order}, [step("o-1", SagaInput.CANCELLATION_CONFIRMED, confirmed)], deadline=DEADLINE
    )

    changed = changes.changed["o-1"]
    assert (changed.status, changed.cancellation) == (OrderStatus.CANCELLED, Cancellation.CONFIRMED)
    (cancelled,) = changes.emitted
    assert cancelled.type == "OrderCancelled" and cancelled.payload["reason"] == "timeout"
    assert cancelled.causation_id == confirmed.event_id


def test_a_parcel_that_shipped_before_delivery_saw_the_cancel_moves_the_order_on_not_back() -> None:
    order = row("o-1", OrderStatus.CANCELLING, cancel_reason="customer", cancellation=Cancellation.REQUESTED)
    shipped = from_delivery("o-1", Shipped(tracking_code="TRK-1"))
    changes = apply_steps({"o-1": order}, [step("o-1", SagaInput.SHIPPED, shipped)], deadline=DEADLINE)

    changed = changes.changed["o-1"]
    assert (changed.status, changed.cancellation) == (OrderStatus.SHIPPED, Cancellation.REQUESTED)
    assert changes.emitted == []


def test_a_rejected_input_is_logged_with_its_reason_and_changes_nothing() -> None:
    order = row("o-1", OrderStatus.CANCELLED, cancel_reason="customer")
    shipped = from_delivery("o-1", Shipped())
    changes = apply_steps({"o-1": order}, [step("o-1", SagaInput.SHIPPED, shipped)], deadline=DEADLINE)

    assert not changes.changed and not changes.created and changes.emitted == []
    (entry,) = changes.timeline
    assert entry.kind == "rejected" and "illegal" in (entry.detail or "")
    assert changes.results[0].decision.outcome is Outcome.REJECTED
    assert changes.results[0].order == order
