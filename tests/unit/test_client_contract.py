"""The Python client (clients/python) speaks the API the services document: a drift fails here."""

from __future__ import annotations

import copy

from common.openapi import build_openapi
from common.shared_api import SHARED_ROUTES
from delivery import api as delivery_api
from delivery.lifecycle import STATUSES, STEPS
from order import api as order_api
from order.webhooks import api as webhooks_api
from payment import api as payment_api
from saga_client.models import CARRIER_STEPS
from tests.client_drift import drifts

ROUTES = {
    "payment": payment_api.ROUTES,
    "order": (*order_api.ROUTES, *webhooks_api.ROUTES),  # the order service serves the webhooks' routes
    "delivery": delivery_api.ROUTES,
}
DOCUMENTS = {name: build_openapi(name, "", [*routes, *SHARED_ROUTES]) for name, routes in ROUTES.items()}


def test_every_operation_of_the_client_answers_the_shape_and_sends_a_key_its_service_documents() -> None:
    assert drifts(DOCUMENTS) == []


def test_the_clients_carrier_steps_are_the_platforms_in_order_with_their_statuses_and_fields() -> None:
    """The client's one table of steps (`saga_client.models.CARRIER_STEPS`) against `delivery/lifecycle.py`:
    a step the client lacks would have no call, and `saga_carrier` would never walk it."""
    client = [(step.name, step.reached.value, step.made_by, step.holds) for step in CARRIER_STEPS]
    platform = [
        (step.value, rules.reached.value, rules.made_by, STATUSES[rules.reached].stock.value)
        for step, rules in STEPS.items()
    ]
    assert client == platform


def test_a_field_added_to_an_answer_is_a_drift() -> None:
    documents = copy.deepcopy(DOCUMENTS)
    documents["order"]["components"]["schemas"]["OrderDetail"]["properties"]["priority"] = {"type": "integer"}

    assert any("GET /orders/{order_id}" in drift for drift in drifts(documents))


def test_a_new_status_of_the_saga_is_a_drift() -> None:
    documents = copy.deepcopy(DOCUMENTS)
    documents["order"]["components"]["schemas"]["OrderStatus"]["enum"].append("ON_HOLD")

    assert any("OrderDetail" in drift for drift in drifts(documents))


def test_a_renamed_route_is_a_drift() -> None:
    documents = copy.deepcopy(DOCUMENTS)
    documents["order"]["paths"]["/orders/{order_id}/abort"] = documents["order"]["paths"].pop(
        "/orders/{order_id}/cancel"
    )

    assert any(
        "POST /orders/{order_id}/cancel 202: not in the document" in drift for drift in drifts(documents)
    )


def test_a_role_the_document_does_not_allow_is_a_drift() -> None:
    documents = copy.deepcopy(DOCUMENTS)
    retry = documents["payment"]["paths"]["/payments/{order_id}/refund/retry"]["post"]
    retry["security"] = [{"apiKey": ["shop"]}]  # the client retries refunds with the operator's key

    assert any(
        "POST /payments/{order_id}/refund/retry 202: the client sends the operator key" in drift
        for drift in drifts(documents)
    )


def test_a_public_operation_that_comes_to_need_a_key_is_a_drift() -> None:
    documents = copy.deepcopy(DOCUMENTS)
    documents["order"]["paths"]["/readyz"]["get"]["security"] = [{"apiKey": ["operator"]}]

    assert any("order: GET /readyz 200: the client sends no key" in drift for drift in drifts(documents))
