"""Every event someone emits is consumed by a service that acts on it, and every handler has an emitter:
the handlers of each service against the topics its declaration says it reads (common/services.py)."""

from __future__ import annotations

from datetime import timedelta

from common.events import CATALOGUE
from common.kafka import TOPICS
from common.services import SERVICES, Service
from delivery.handlers import HANDLERS as DELIVERY_HANDLERS
from order.handlers import build_handlers
from payment.handlers import HANDLERS as PAYMENT_HANDLERS

ORDER_HANDLERS = build_handlers(timedelta(seconds=30)).handlers
SUBSCRIPTIONS = {
    Service.PAYMENT: set(PAYMENT_HANDLERS),
    Service.ORDER: set(ORDER_HANDLERS),
    Service.DELIVERY: set(DELIVERY_HANDLERS),
}
# Announcements for the record (topic readers, the operator's `saga tail`): no service acts on them.
FOR_THE_RECORD = {"OrderCompleted"}


def test_every_declared_service_has_its_handlers_here() -> None:
    assert set(SUBSCRIPTIONS) == set(SERVICES)


def test_every_event_is_on_the_topic_of_a_declared_service() -> None:
    assert {spec.topic for spec in CATALOGUE.values()} == set(TOPICS)


def test_every_emitted_event_has_a_subscriber_that_reads_its_topic() -> None:
    for name, event in CATALOGUE.items():
        readers = [spec.service for spec in SERVICES.values() if event.topic in spec.consumed_topics]
        subscribed = [service for service in readers if name in SUBSCRIPTIONS[service]]
        assert subscribed or name in FOR_THE_RECORD, f"nobody acts on {name} (topic {event.topic})"
        assert not (subscribed and name in FOR_THE_RECORD), f"{name} has subscribers: {subscribed}"


def test_every_subscription_has_an_emitter_on_a_topic_the_service_reads() -> None:
    for service, names in SUBSCRIPTIONS.items():
        for name in names:
            assert name in CATALOGUE, f"{service.value} handles {name}, which no one emits"
            assert CATALOGUE[name].topic in SERVICES[service].consumed_topics, (
                f"{service.value} handles {name} but does not read topic {CATALOGUE[name].topic}"
            )


def test_no_service_consumes_its_own_topic() -> None:
    for spec in SERVICES.values():
        assert spec.topic not in spec.consumed_topics
