"""The compensation map (`COMPENSATIONS` in order/saga.py) checked against the services' real handler
tables and the event catalogue: each compensating event the saga emits is handled by every service the map
names, by no other, and what a service answers is a cataloged event of its own topic that the saga hears.

(Apart from tests/unit/test_saga_transitions.py, which checks the map against the saga's rules: that one
runs on copies of order/ and common/ alone, without the other services.)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pytest

from common.config import Service
from common.events.catalogue import CATALOGUE, EventSpec
from common.events.values import Frozen
from common.messaging.runner import Handler
from delivery.handlers import HANDLERS as DELIVERY_HANDLERS
from order.handlers import INPUT_OF
from order.saga import COMPENSATIONS, Compensation, Emit, OrderStatus, Outcome, SagaInput, decide
from order.saga_batch import OrderRow, SagaStep, apply_steps
from payment.handlers import HANDLERS as PAYMENT_HANDLERS

# What each service consumes from the `order` topic, as its worker is wired (the order service consumes
# the other two topics, never its own).
HANDLERS: Mapping[Service, Mapping[str, Handler]] = {
    Service.PAYMENT: PAYMENT_HANDLERS,
    Service.DELIVERY: DELIVERY_HANDLERS,
}
COMPENSATIONS_BY = [
    pytest.param(emit, compensation, id=f"{emit.value}-{compensation.service.value}")
    for emit, compensating in COMPENSATIONS.items()
    for compensation in compensating.by
]


def spec_of(payload: type[Frozen]) -> EventSpec:
    """The catalogue's entry of a payload type; the test fails if the catalogue has none."""
    specs = [spec for spec in CATALOGUE.values() if spec.payload is payload]
    assert specs, f"{payload.__name__} is not in the event catalogue"
    return specs[0]


def event_name(payload: type[Frozen]) -> str:
    return spec_of(payload).name


def test_every_compensating_event_is_a_cataloged_event_of_the_order_topic() -> None:
    for compensating in COMPENSATIONS.values():
        assert spec_of(compensating.event).topic == Service.ORDER.value


@pytest.mark.parametrize(("emit", "compensation"), COMPENSATIONS_BY)
def test_every_service_the_map_names_has_a_handler_for_the_compensating_event(
    emit: Emit, compensation: Compensation
) -> None:
    name = event_name(COMPENSATIONS[emit].event)
    assert name in HANDLERS[compensation.service], f"{compensation.service} does not handle {name}"


@pytest.mark.parametrize("service", list(HANDLERS))
def test_a_service_handles_a_compensating_event_only_where_the_map_says_it_does(service: Service) -> None:
    compensating = {event_name(c.event): c for c in COMPENSATIONS.values()}
    handled = set(HANDLERS[service]) & set(compensating)
    named = {name for name, c in compensating.items() if service in {by.service for by in c.by}}
    assert handled == named


@pytest.mark.parametrize(("emit", "compensation"), COMPENSATIONS_BY)
def test_what_a_compensation_answers_is_cataloged_on_its_services_topic_and_heard_by_the_saga(
    emit: Emit, compensation: Compensation
) -> None:
    for answer in compensation.answers:
        spec = spec_of(answer)
        assert spec.topic == compensation.service.value, f"{spec.name} is not {compensation.service}'s"
        assert spec.name in INPUT_OF, f"the saga does not hear {spec.name}"


def test_a_compensation_that_ends_a_cancel_answers_with_an_input_the_saga_applies_after_it() -> None:
    """Delivery's answers reach a saga it left CANCELLING (or SHIPPED, when the parcel left first), and
    payment's reach a CANCELLED one: each is applied there, none is rejected as illegal."""
    after = {Emit.ORDER_CANCELLATION_REQUESTED: (OrderStatus.CANCELLING, OrderStatus.SHIPPED)}
    after[Emit.ORDER_CANCELLED] = (OrderStatus.CANCELLED,)
    for emit, compensating in COMPENSATIONS.items():
        for compensation in compensating.by:
            for answer in compensation.answers:
                saga_input = INPUT_OF[event_name(answer)]
                outcomes = {decide(status, saga_input).outcome for status in after[emit]}
                assert Outcome.APPLIED in outcomes, f"{saga_input} is applied after no {emit}"


@pytest.mark.parametrize(
    ("status", "saga_input"),
    [
        (status, saga_input)
        for status in OrderStatus
        for saga_input in SagaInput
        if any(emission.kind in COMPENSATIONS for emission in decide(status, saga_input).emits)
    ],
)
def test_the_saga_emits_each_compensation_as_the_event_the_map_names(
    status: OrderStatus, saga_input: SagaInput
) -> None:
    order = OrderRow(
        order_id="acme:o-1",
        payment_id=uuid.uuid4(),
        customer_id="c-1",
        status=status,
        amount_minor=1000,
        currency="EUR",
        lines=[],
        shipping_address=None,
        cancel_reason="customer",
    )

    changes = apply_steps({"acme:o-1": order}, [SagaStep("acme:o-1", saga_input)], deadline=None)

    kinds = [e.kind for e in decide(status, saga_input).emits]
    assert [e.type for e in changes.emitted] == [event_name(COMPENSATIONS[kind].event) for kind in kinds]
