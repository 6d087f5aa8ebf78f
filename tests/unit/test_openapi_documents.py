"""The OpenAPI documents say exactly what the views accept and answer, and cannot drift from them."""

from __future__ import annotations

from typing import Any

import faust
import pytest
from pydantic import BaseModel

from common import operations_api
from common.messaging import dead_letter_api
from common.openapi import Answer, Route, build_openapi
from common.params import BIGINT_MAX, OrderPath, Parameters
from common.shared_api import SHARED_ROUTES
from common.web import Blueprint, JsonView, check_view, dependency, provide
from delivery import api as delivery_api
from order import api as order_api
from order.saga import OrderStatus
from order.webhooks import api as webhooks_api
from payment import api as payment_api

DOCUMENTS = {
    module.__name__: build_openapi("t", "d", [*module.ROUTES, *SHARED_ROUTES])
    for module in (payment_api, order_api, webhooks_api, delivery_api)
}


def operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (name, path, method, operation)
        for name, document in DOCUMENTS.items()
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


@pytest.mark.parametrize(("service", "path", "method", "operation"), operations())
def test_every_answer_has_a_schema_and_every_parameter_a_type(
    service: str, path: str, method: str, operation: dict[str, Any]
) -> None:
    for status, response in operation["responses"].items():
        [(media_type, content)] = response["content"].items()
        assert content["schema"], f"{method} {path} {status}"
        assert media_type in ("application/json", "text/plain")
    for parameter in operation.get("parameters", []):
        assert parameter["schema"].get("type") in ("string", "integer"), parameter
        if parameter["schema"]["type"] == "integer":
            assert {"minimum", "maximum"} <= set(parameter["schema"]), parameter
        elif "enum" not in parameter["schema"]:
            assert {"pattern", "maxLength"} <= set(parameter["schema"]), parameter


@pytest.mark.parametrize(("service", "path", "method", "operation"), operations())
def test_every_route_documents_the_errors_of_the_http_edge(
    service: str, path: str, method: str, operation: dict[str, Any]
) -> None:
    responses = operation["responses"]
    if operation.get("parameters") or "requestBody" in operation:
        assert "400" in responses
    if "requestBody" in operation:
        assert {"413", "422"} <= set(responses)
    if path not in ("/healthz", "/readyz", "/openapi.json"):
        assert responses["503"]["headers"]["Retry-After"]["required"] is True


def parameter(document: str, path: str, method: str, name: str) -> dict[str, Any]:
    [found] = [p for p in DOCUMENTS[document]["paths"][path][method]["parameters"] if p["name"] == name]
    return found


def test_the_order_status_filter_offers_every_status_of_the_saga() -> None:
    status = parameter("order.api", "/orders", "get", "status")

    assert status["schema"]["enum"] == [member.value for member in OrderStatus]


def test_a_dead_letter_id_is_a_positive_bigint() -> None:
    letter_id = parameter("payment.api", "/dead-letters/{dead_letter_id}", "get", "dead_letter_id")

    assert letter_id["required"] is True
    assert letter_id["schema"] == {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}


def test_the_idempotency_key_is_required_and_never_empty() -> None:
    key = parameter("payment.api", "/checkout", "post", "Idempotency-Key")

    assert key["required"] is True
    assert key["schema"]["minLength"] == 1 and key["schema"]["maxLength"] == 200
    assert key["schema"]["pattern"] == "^[!-~]([ -~]*[!-~])?$"


def test_limits_and_offsets_are_bounded_with_their_defaults() -> None:
    limit = parameter("order.api", "/orders", "get", "limit")
    offset = parameter("delivery.api", "/dead-letters", "get", "offset")

    assert (limit["required"], limit["schema"]["minimum"], limit["schema"]["maximum"]) == (False, 1, 500)
    assert limit["schema"]["default"] == 50
    assert (offset["schema"]["minimum"], offset["schema"]["default"]) == (0, 0)


class _Nothing(BaseModel):
    pass


def test_a_route_whose_path_and_parameters_disagree_is_refused() -> None:
    with pytest.raises(ValueError, match="path_params"):
        Route("GET", "/orders/{id}", "x", responses={200: Answer("ok", _Nothing)}, path_params=OrderPath)


def test_a_success_without_a_body_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a body schema"):
        Route("GET", "/things", "x", responses={200: "ok"})


SHOW = Route("GET", "/things/{order_id}", "x", responses={200: Answer("ok", _Nothing)}, path_params=OrderPath)


class _Query(Parameters):
    limit: int = 5


LISTED = Route("GET", "/things", "x", responses={200: Answer("ok", _Nothing)}, query=_Query)


def test_a_view_must_implement_exactly_the_declared_methods() -> None:
    class PostsInstead(JsonView):
        async def post(self, request: Any, order_id: str) -> Any: ...

    with pytest.raises(TypeError, match="implements"):
        check_view(PostsInstead, {"GET": SHOW})


def test_a_handler_must_take_exactly_the_arguments_of_its_route() -> None:
    class ForgetsTheQuery(JsonView):
        async def get(self, request: Any) -> Any: ...

    class Matches(JsonView):
        async def get(self, request: Any, query: _Query) -> Any: ...

    with pytest.raises(TypeError, match="passes"):
        check_view(ForgetsTheQuery, {"GET": LISTED})
    check_view(Matches, {"GET": LISTED})


def test_head_is_served_only_where_there_is_a_get() -> None:
    class PostOnly(JsonView):
        async def post(self, request: Any) -> Any: ...

    class Readable(JsonView):
        async def get(self, request: Any) -> Any: ...

    assert PostOnly(app=None, web=None).get_methods() == {"POST"}  # type: ignore[arg-type]
    assert Readable(app=None, web=None).get_methods() == {"GET", "HEAD"}  # type: ignore[arg-type]


@pytest.mark.parametrize("service", list(DOCUMENTS))
def test_every_link_leads_to_an_operation_of_the_same_document(service: str) -> None:
    document = DOCUMENTS[service]
    operation_ids = {op["operationId"] for methods in document["paths"].values() for op in methods.values()}
    links = [
        link
        for methods in document["paths"].values()
        for operation in methods.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    ]

    assert links
    assert all(link["operationId"] in operation_ids for link in links)


@pytest.mark.parametrize(
    "module", [payment_api, order_api, webhooks_api, delivery_api], ids=lambda module: module.__name__
)
def test_each_service_serves_exactly_the_routes_its_document_is_checked_with(module: Any) -> None:
    assert sorted(module.blueprint.documented, key=id) == sorted(module.ROUTES, key=id)


def test_the_shared_views_serve_exactly_the_shared_routes() -> None:
    served = [*operations_api.blueprint.documented, *dead_letter_api.blueprint.documented]

    assert served == list(SHARED_ROUTES)


def test_a_blueprint_checks_a_view_as_it_is_declared_and_routes_it_at_the_path() -> None:
    blueprint = Blueprint("things")

    with pytest.raises(TypeError, match="passes"):

        @blueprint.serve(LISTED)
        class ForgetsTheQuery(JsonView):
            async def get(self, request: Any) -> Any: ...

    @blueprint.serve(LISTED)
    class Things(JsonView):
        async def get(self, request: Any, query: _Query) -> Any: ...

    assert [(route.uri, route.handler) for route in blueprint.routes] == [("/things", Things)]
    assert blueprint.documented == [LISTED] and Things.routes == {"GET": LISTED}


def test_a_view_reaches_what_its_app_was_provided_by_type() -> None:
    app, other = faust.App("provided", autodiscover=False), faust.App("bare", autodiscover=False)
    provide(app, _Nothing())

    assert isinstance(dependency(app, _Nothing), _Nothing)
    with pytest.raises(LookupError, match="_Nothing"):
        dependency(other, _Nothing)
