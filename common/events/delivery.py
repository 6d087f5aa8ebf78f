"""Events on the `delivery` topic (written only by the delivery service)."""

from __future__ import annotations

from common.events.values import Frozen, OrderLine, SkuShortage
from common.services import Service, topic_of

TOPIC = topic_of(Service.DELIVERY)  # the topic these events are written to


class DeliveryScheduled(Frozen):
    """Every line is reserved; a shipment is scheduled."""

    lines: tuple[OrderLine, ...]


class OutOfStock(Frozen):
    """At least one line could not be reserved; nothing was reserved."""

    short: tuple[SkuShortage, ...]


class Shipped(Frozen):
    """The carrier picked the parcel up."""

    tracking_code: str | None = None


class Delivered(Frozen):
    """The carrier handed the parcel to the customer."""


class CancellationConfirmed(Frozen):
    """Delivery's answer to OrderCancellationRequested: the order will never ship.

    `released` lists what was reserved and is back on the shelf (empty when nothing was reserved).
    """

    released: tuple[OrderLine, ...] = ()


class CancellationRefused(Frozen):
    """Delivery's answer to OrderCancellationRequested: too late, the parcel has already shipped.

    Shipping is the saga's pivot; the order carries on to COMPLETED and the payment is kept.
    """

    shipment_status: str
    tracking_code: str | None = None


# Every event on the topic, for the catalogue (`common/events/catalogue.py`): an event class not listed
# here is not on the wire.
EVENTS: tuple[type[Frozen], ...] = (
    DeliveryScheduled,
    OutOfStock,
    Shipped,
    Delivered,
    CancellationConfirmed,
    CancellationRefused,
)
