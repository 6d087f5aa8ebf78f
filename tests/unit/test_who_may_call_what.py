"""Who may call what, operation by operation, as the security model states it (docs/operators/security.md),
and as each service's OpenAPI document says it: a route whose access changes must change this table too."""

from __future__ import annotations

import pytest

from common.auth import Scope
from common.openapi import Route, build_openapi
from common.shared_api import SHARED_ROUTES
from delivery import api as delivery_api
from delivery.lifecycle import CarrierStep
from order import api as order_api
from order.webhooks import api as webhooks_api
from payment import api as payment_api

ROUTES = {
    f"{route.method} {route.path}": route
    for route in (
        *payment_api.ROUTES,
        *order_api.ROUTES,
        *webhooks_api.ROUTES,
        *delivery_api.ROUTES,
        *SHARED_ROUTES,
    )
}
PUBLIC = "public"

WHO_MAY_CALL = {
    "POST /checkout": {"shop"},
    "GET /payments/{order_id}": {"shop", "operator", "payment-lookup"},  # payment-lookup: order's own key
    "POST /payments/{order_id}/refund/retry": {"operator"},
    "GET /orders/{order_id}": {"shop", "operator"},
    "GET /orders": {"shop", "operator"},
    "POST /orders/{order_id}/cancel": {"shop"},
    # A shop manages its own webhook endpoints, an operator every shop's.
    "POST /webhooks": {"shop", "operator"},
    "GET /webhooks": {"shop", "operator"},
    "GET /webhooks/{webhook_id}": {"shop", "operator"},
    "DELETE /webhooks/{webhook_id}": {"shop", "operator"},
    "POST /webhooks/{webhook_id}/disable": {"shop", "operator"},
    "POST /webhooks/{webhook_id}/enable": {"shop", "operator"},
    "POST /webhooks/{webhook_id}/rotate-secret": {"shop", "operator"},
    "GET /webhooks/{webhook_id}/attempts": {"shop", "operator"},
    "POST /webhooks/{webhook_id}/resend": {"shop", "operator"},
    "GET /inventory/{sku}": {"shop", "operator"},
    "GET /inventory": {"shop", "operator"},
    "PUT /inventory/{sku}": {"operator"},
    "POST /inventory": {"operator"},
    "GET /shipments/{order_id}": {"shop", "carrier", "operator"},
    **{f"POST /shipments/{{order_id}}/{step}": {"carrier"} for step in CarrierStep},  # each carrier step
    "GET /dead-letters": {"operator"},
    "GET /dead-letters/{dead_letter_id}": {"operator"},
    "POST /dead-letters/{dead_letter_id}/retry": {"operator"},
    "POST /dead-letters/{dead_letter_id}/discard": {"operator"},
    "GET /metrics": {"operator"},  # public only with SAGA_PUBLIC_METRICS
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /openapi.json": PUBLIC,  # the contract, as published in the repository
}


def test_the_table_names_every_operation_once() -> None:
    assert set(WHO_MAY_CALL) == set(ROUTES)


@pytest.mark.parametrize("operation", sorted(WHO_MAY_CALL))
def test_each_operation_lets_in_exactly_the_scopes_the_model_gives_it(operation: str) -> None:
    access = ROUTES[operation].access
    expected = WHO_MAY_CALL[operation]

    if expected == PUBLIC:
        assert access.public
    else:
        assert not access.public and {scope.value for scope in access.scopes} == expected


@pytest.mark.parametrize("operation", sorted(WHO_MAY_CALL))
def test_the_document_states_each_operations_scopes_and_its_401_and_403(operation: str) -> None:
    route: Route = ROUTES[operation]
    document = build_openapi("t", "", [route])
    described = document["paths"][route.path][route.method.lower()]
    expected = WHO_MAY_CALL[operation]

    if expected == PUBLIC:
        assert described["security"] == []
        assert "401" not in described["responses"] and "403" not in described["responses"]
    else:
        assert described["security"] == [{"apiKey": [scope]} for scope in sorted(expected)]
        assert "WWW-Authenticate" in described["responses"]["401"]["headers"]
        assert ("403" in described["responses"]) == (expected != {scope.value for scope in Scope})
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
