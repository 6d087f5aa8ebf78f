"""Events on the `payment` topic (written only by the payment service)."""

from __future__ import annotations

from uuid import UUID

from common.events.values import Address, Frozen, Money, OrderLine
from common.services import Service, topic_of

TOPIC = topic_of(Service.PAYMENT)  # the topic these events are written to


class PaymentCompleted(Frozen):
    """The customer was charged; carries what the order needs to be placed."""

    payment_id: UUID
    customer_id: str
    amount: Money
    lines: tuple[OrderLine, ...]
    shipping_address: Address


class PaymentFailed(Frozen):
    """The charge was declined or the gateway could not be reached; nothing was charged."""

    payment_id: UUID
    customer_id: str
    amount: Money
    reason: str


class PaymentRefunded(Frozen):
    """The full charge was returned to the customer."""

    payment_id: UUID
    refund_id: UUID
    amount: Money


class PaymentRefundFailed(Frozen):
    """The gateway kept refusing the refund; an operator must retry it."""

    payment_id: UUID
    refund_id: UUID
    amount: Money
    reason: str
    attempts: int


# Every event on the topic, for the catalogue (`common/events/catalogue.py`): an event class not listed
# here is not on the wire.
EVENTS: tuple[type[Frozen], ...] = (
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
    PaymentRefundFailed,
)
