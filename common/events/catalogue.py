"""Which event types exist, on which topic, and the newest version this code understands."""

from __future__ import annotations

from dataclasses import dataclass

from common.events import delivery, order, payment
from common.events.values import Frozen
from common.services import Service, topic_of


@dataclass(frozen=True)
class EventSpec:
    name: str
    topic: str
    version: int
    payload: type[Frozen]


def _specs(topic: str, *payloads: type[Frozen]) -> list[EventSpec]:
    # The wire name is the class name, written out here once; renaming a class must not rename an event.
    return [EventSpec(name=p.__name__, topic=topic, version=1, payload=p) for p in payloads]


CATALOGUE: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        *_specs(
            topic_of(Service.PAYMENT),
            payment.PaymentCompleted,
            payment.PaymentFailed,
            payment.PaymentRefunded,
            payment.PaymentRefundFailed,
        ),
        *_specs(
            topic_of(Service.ORDER),
            order.OrderPlaced,
            order.OrderCancellationRequested,
            order.OrderCancelled,
            order.OrderCompleted,
        ),
        *_specs(
            topic_of(Service.DELIVERY),
            delivery.DeliveryScheduled,
            delivery.OutOfStock,
            delivery.Shipped,
            delivery.Delivered,
            delivery.CancellationConfirmed,
            delivery.CancellationRefused,
        ),
    )
}

_BY_PAYLOAD: dict[type[Frozen], EventSpec] = {spec.payload: spec for spec in CATALOGUE.values()}


def payload_type_for(payload: Frozen) -> EventSpec:
    """The catalogue entry of a payload object (raises KeyError for a type outside the catalogue)."""
    return _BY_PAYLOAD[type(payload)]
