"""Where each saga input comes from: an event another service sent, or the order service itself (the
customer's cancel, the deadline), as `order.saga.declared_source` declares; `order/handlers.py`
(`INPUT_OF`) maps the events to the inputs from it. An input nobody sends, or an event order consumes and
cannot map, fails here rather than at run time (a KeyError in the consumer)."""

from __future__ import annotations

from collections import Counter

from common.config import Service
from common.events.catalogue import CATALOGUE
from common.services import SERVICES
from order.handlers import INPUT_OF
from order.saga import OWN_INPUTS, SOURCES, SagaInput


def test_every_event_type_order_consumes_is_a_saga_input() -> None:
    topics = SERVICES[Service.ORDER].consumed_topics
    consumed = {spec.name for spec in CATALOGUE.values() if spec.topic in topics}
    assert set(INPUT_OF) == consumed


def test_every_input_comes_from_exactly_one_event_type_or_from_the_order_service_itself() -> None:
    # Two inputs declared from one event type would leave one of them out of INPUT_OF: counted here.
    sources = Counter([*INPUT_OF.values(), *OWN_INPUTS])
    assert sources == Counter(SagaInput)


def test_the_order_services_own_inputs_are_the_customers_cancel_and_the_deadline() -> None:
    assert {SagaInput.CANCEL_REQUESTED, SagaInput.DEADLINE_EXPIRED} == OWN_INPUTS
    assert all(SOURCES[saga_input] is None for saga_input in OWN_INPUTS)
