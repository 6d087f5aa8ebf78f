"""In which order a rebuild feeds the recorded events back into the order saga. Pure.

The order service's inputs are the `payment` and `delivery` topics, plus two inputs that reach it
outside Kafka: the customer's cancel (HTTP) and the delivery deadline (a timer). Those two left a trace
only in order's own topic, as an OrderCancellationRequested with reason `customer` or `timeout`.

Business rule for the sequence: events go by the time they occurred, except that such a request goes
right after the order's PaymentCompleted, before every delivery event. A request is only emitted from
a status before the parcel ships (those `declared_standing` lets the customer cancel in), and from each
one the saga ends the same: delivery's events that brought the order there (DeliveryScheduled, and any
carrier step's before shipping) are ignored while a cancellation is under way, and everything delivery
did after them (OutOfStock, Shipped, its answer to the request) still follows in time order.

Before cancellations went through delivery, order cancelled on its own and emitted OrderCancelled
(`customer`, `timeout`) without a request. Such an old cancel is replayed as the request followed at
once by delivery's confirmation (delivery released the order when it received it); the migration that
introduced the request marked those orders' cancellations `confirmed` alike. Order's other emissions
(OrderPlaced, OrderCompleted, OrderCancelled after a confirmation or an OutOfStock) are outputs of
inputs the rebuild replays, so they are not inputs themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from common.services import SERVICES, Service, topic_of
from order.saga import CancelReason, SagaInput

REQUESTED_CANCELS = {
    CancelReason.CUSTOMER.value: SagaInput.CANCEL_REQUESTED,
    CancelReason.TIMEOUT.value: SagaInput.DEADLINE_EXPIRED,
}
INPUT_TOPICS = SERVICES[Service.ORDER].consumed_topics  # the saga's inputs: payment's and delivery's
PAYMENT_TOPIC, ORDER_TOPIC = topic_of(Service.PAYMENT), topic_of(Service.ORDER)
REQUEST = "OrderCancellationRequested"


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
        e.order_id: e.occurred_at for e in events if e.topic == PAYMENT_TOPIC and e.type == "PaymentCompleted"
    }
    asked = {e.order_id for e in events if e.topic == ORDER_TOPIC and e.type == REQUEST}
    keyed: list[tuple[tuple[datetime, int, int], SagaStep]] = []
    for index, event in enumerate(events):
        if event.topic in INPUT_TOPICS and event.type in inputs:
            keyed.append(((event.occurred_at, 0, index), SagaStep(event, None)))
            continue
        if event.topic != ORDER_TOPIC or event.reason not in REQUESTED_CANCELS:
            continue
        requested = REQUESTED_CANCELS[event.reason]
        at = paid_at.get(event.order_id, event.occurred_at)
        if event.type == REQUEST:
            keyed.append(((at, 1, index), SagaStep(event, requested)))
        elif event.type == "OrderCancelled" and event.order_id not in asked:
            keyed.append(((at, 1, index), SagaStep(event, requested)))
            keyed.append(((at, 2, index), SagaStep(event, SagaInput.CANCELLATION_CONFIRMED)))
    return [step for _, step in sorted(keyed, key=lambda pair: pair[0])]
