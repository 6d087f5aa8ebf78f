"""Events on the `order` topic (written only by the order service)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from common.events.values import Address, Frozen, Money, OrderLine
from common.services import Service, topic_of

TOPIC = topic_of(Service.ORDER)  # the topic these events are written to


class OrderPlaced(Frozen):
    """The order is paid and waits for delivery to reserve its lines."""

    payment_id: UUID
    customer_id: str
    amount: Money
    lines: tuple[OrderLine, ...]
    shipping_address: Address


class OrderCancellationRequested(Frozen):
    """The customer or the delivery deadline asks to cancel; only delivery, which owns the shipment, decides.

    Delivery answers CancellationConfirmed (nothing will ship; any reservation was released) or
    CancellationRefused (the parcel has already shipped). Nothing is refunded on this event.
    """

    payment_id: UUID
    reason: Literal["customer", "timeout"]


class OrderCancelled(Frozen):
    """The order will not be fulfilled: delivery confirmed (or found no stock), so payment refunds.

    Emitted only once delivery has decided: after CancellationConfirmed or OutOfStock. Delivery releases
    a reservation it still holds (events written before cancellations were confirmed by delivery).
    """

    payment_id: UUID
    amount: Money
    reason: Literal["out_of_stock", "customer", "timeout"]


class OrderCompleted(Frozen):
    """The goods were delivered; the saga is over."""

    payment_id: UUID
    amount: Money


# Every event on the topic, for the catalogue (`common/events/catalogue.py`): an event class not listed
# here is not on the wire.
EVENTS: tuple[type[Frozen], ...] = (
    OrderPlaced,
    OrderCancellationRequested,
    OrderCancelled,
    OrderCompleted,
)
