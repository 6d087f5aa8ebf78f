"""In which order a rebuild feeds the recorded events back into the order saga. Pure.

The order service's inputs are the `payment` and `delivery` topics, plus two inputs that reach it
outside Kafka: the customer's cancel (HTTP) and the delivery deadline (a timer). Those two left a trace
only in order's own topic, as an OrderCancelled with reason `customer` or `timeout` and no cause.

Business rule for the sequence: events go by the time they occurred, except that such a requested
cancel goes right after the order's PaymentCompleted, before every delivery answer. That is where it
must have been: a timeout applies only before delivery answers; a customer cancel that applied was
either before DeliveryScheduled or after it with the same result, never after OutOfStock (the order
would already have been cancelled, and nothing would have been emitted) nor after Shipped (too late).
Order's other emissions (OrderPlaced, OrderCompleted, OrderCancelled for out_of_stock) are outputs of
inputs the rebuild replays, so they are not inputs themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from order.saga import CancelReason, SagaInput

REQUESTED_CANCELS = {
    CancelReason.CUSTOMER.value: SagaInput.CANCEL_REQUESTED,
    CancelReason.TIMEOUT.value: SagaInput.DEADLINE_EXPIRED,
}
INPUT_TOPICS = ("payment", "delivery")


@dataclass(frozen=True)
class RecordedEvent:
    """The parts of a recorded event the ordering needs; `ref` is whatever the caller wants back."""

    topic: str
    type: str
    order_id: str
    occurred_at: datetime
    reason: str | None
    ref: object = None


@dataclass(frozen=True)
class SagaStep:
    event: RecordedEvent
    saga_input: SagaInput | None  # None: an input event (the caller maps it by type)


def saga_steps(events: Iterable[RecordedEvent], input_types: Iterable[str]) -> list[SagaStep]:
    """The events the order saga takes as inputs, in the order a rebuild applies them."""
    inputs = set(input_types)
    events = list(events)
    paid_at = {
        e.order_id: e.occurred_at for e in events if e.topic == "payment" and e.type == "PaymentCompleted"
    }
    keyed: list[tuple[tuple[datetime, int, int], SagaStep]] = []
    for index, event in enumerate(events):
        if event.topic in INPUT_TOPICS and event.type in inputs:
            keyed.append(((event.occurred_at, 0, index), SagaStep(event, None)))
        elif event.topic == "order" and event.type == "OrderCancelled" and event.reason in REQUESTED_CANCELS:
            requested = REQUESTED_CANCELS[event.reason]
            at = paid_at.get(event.order_id, event.occurred_at)
            keyed.append(((at, 1, index), SagaStep(event, requested)))
    return [step for _, step in sorted(keyed, key=lambda pair: pair[0])]
