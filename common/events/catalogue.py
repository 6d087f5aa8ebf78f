"""Which event types exist, on which topic, and the newest version this code understands."""

from __future__ import annotations

from dataclasses import dataclass

from common.events import delivery, order, payment
from common.events.values import Frozen


@dataclass(frozen=True)
class EventSpec:
    name: str
    topic: str
    version: int
    payload: type[Frozen]


# One module per topic, each declaring its `TOPIC` and its `EVENTS`: a new event is added in its module only.
# (Named attribute by attribute, not by iterating the modules, so mypy checks each declaration's type.)
_TOPICS: tuple[tuple[str, tuple[type[Frozen], ...]], ...] = (
    (payment.TOPIC, payment.EVENTS),
    (order.TOPIC, order.EVENTS),
    (delivery.TOPIC, delivery.EVENTS),
)


def _specs(topic: str, payloads: tuple[type[Frozen], ...]) -> list[EventSpec]:
    # The wire name is the class name: renaming a payload class would rename its event on the wire, which
    # consumers of an older version would park as unknown. Rename an event only with a new one.
    return [EventSpec(name=p.__name__, topic=topic, version=1, payload=p) for p in payloads]


CATALOGUE: dict[str, EventSpec] = {
    spec.name: spec for topic, payloads in _TOPICS for spec in _specs(topic, payloads)
}

_BY_PAYLOAD: dict[type[Frozen], EventSpec] = {spec.payload: spec for spec in CATALOGUE.values()}


def payload_type_for(payload: Frozen) -> EventSpec:
    """The catalogue entry of a payload object (raises KeyError for a type outside the catalogue)."""
    return _BY_PAYLOAD[type(payload)]


def spec_of(payload_type: type[Frozen]) -> EventSpec:
    """The catalogue entry of a payload type (raises KeyError for a type outside the catalogue)."""
    return _BY_PAYLOAD[payload_type]
