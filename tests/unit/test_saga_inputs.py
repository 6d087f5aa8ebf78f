"""Where each saga input comes from: an event another service sent (`order/handlers.py`, `INPUT_OF`), or
the order service itself (the customer's cancel, the deadline). An input nobody sends, or an event
order consumes and cannot map, fails here rather than at run time (a KeyError in the consumer)."""

from __future__ import annotations

from collections import Counter

from common.config import Service
from common.events.catalogue import CATALOGUE
from common.services import SERVICES
from order.handlers import INPUT_OF
from order.saga import OWN_INPUTS, SagaInput


def test_every_event_type_order_consumes_is_a_saga_input() -> None:
    topics = SERVICES[Service.ORDER].consumed_topics
    consumed = {spec.name for spec in CATALOGUE.values() if spec.topic in topics}
    assert set(INPUT_OF) == consumed


def test_every_input_comes_from_exactly_one_event_type_or_from_the_order_service_itself() -> None:
    sources = Counter([*INPUT_OF.values(), *OWN_INPUTS])
    assert sources == Counter(SagaInput)
