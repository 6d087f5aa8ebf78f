"""Each topic's events are declared in its module (`common/events/<topic>.py`: `TOPIC`, `EVENTS`), which
the catalogue collects. A payload class written in a module but left out of its `EVENTS` would never be
encoded or decoded; it fails here rather than at run time (a KeyError in the outbox)."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from common.events import delivery, order, payment
from common.events.catalogue import CATALOGUE
from common.events.values import Frozen

MODULES = (payment, order, delivery)


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.TOPIC)
def test_every_payload_class_of_a_topics_module_is_one_of_its_events(module: ModuleType) -> None:
    defined = {
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Frozen) and value.__module__ == module.__name__
    }
    assert set(module.EVENTS) == defined


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.TOPIC)
def test_the_catalogue_puts_each_event_on_its_modules_topic_by_its_class_name(module: ModuleType) -> None:
    for payload in module.EVENTS:
        spec = CATALOGUE[payload.__name__]
        assert (spec.topic, spec.payload) == (module.TOPIC, payload)


def test_the_topics_are_the_three_services_and_no_event_name_is_declared_twice() -> None:
    assert [module.TOPIC for module in MODULES] == ["payment", "order", "delivery"]
    assert len(CATALOGUE) == sum(len(module.EVENTS) for module in MODULES)
