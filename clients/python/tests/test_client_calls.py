"""The client without a platform: retries, errors and waiting, over httpx's mock transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from saga_client import (
    AsyncSagaClient,
    ClientConfig,
    IdempotencyConflict,
    NotCancellable,
    NotFound,
    OrderIdTaken,
    RetryPolicy,
    SagaClient,
    Unavailable,
    ValidationFailed,
    WrongState,
)
from saga_client.config import Service
from saga_client.models import CARRIER_STEPS

NO_WAIT = RetryPolicy(attempts=3, initial_delay=0.0, max_delay=0.0, jitter=0.0)
CONFIG = ClientConfig(
    payment_url="http://pay.test",
    order_url="http://order.test",
    delivery_url="http://delivery.test",
    retry=NO_WAIT,
)
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}


def accepted(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        202,
        json={
            "order_id": body["order_id"],
            "payment_id": "6b1f8a1e-0c55-4a8e-9f5c-7b1d2f3e4a5b",
            "status": "CAPTURED",
            "decline_reason": None,
            "order_url": f"http://order.test/orders/{body['order_id']}",
        },
    )


def error(status: int, code: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "message": f"{code}!", **extra})


class Script:
    """A mock server answering each request with the next of `answers` (a response, or an exception to
    raise as the transport), recording what it was sent."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def client(self, **options: Any) -> SagaClient:
        return SagaClient(CONFIG, transport=httpx.MockTransport(self), **options)


def checkout(saga: SagaClient, **extra: Any) -> Any:
    return saga.checkout(
        customer_id="c-1",
        currency="EUR",
        payment_method="tok_visa",
        lines=[("BOOK-1", 2, 1999)],
        shipping_address=ADDRESS,
        **extra,
    )


def test_a_checkout_retried_after_a_dropped_connection_sends_the_same_key_and_body() -> None:
    server = Script(httpx.RemoteProtocolError("server disconnected"), httpx.ReadTimeout("slow"), accepted)

    answer = checkout(server.client())

    assert len(server.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in server.requests}) == 1
    assert len({r.content for r in server.requests}) == 1
    assert answer.order_id == json.loads(server.requests[0].content)["order_id"]


def test_a_checkout_names_its_order_and_key_before_sending_and_keeps_given_ones() -> None:
    server = Script(accepted)
    seen = []

    answer = SagaClient(CONFIG, transport=httpx.MockTransport(server), on_checkout=seen.append).checkout(
        customer_id="c-1",
        currency="EUR",
        payment_method="tok_visa",
        lines=[("BOOK-1", 1, 500)],
        shipping_address=ADDRESS,
        order_id="my-order-1",
        idempotency_key="my-key-1",
    )

    assert answer.order_id == "my-order-1"
    assert server.requests[0].headers["Idempotency-Key"] == "my-key-1"
    assert [(a.order_id, a.idempotency_key) for a in seen] == [("my-order-1", "my-key-1")]
    assert json.loads(server.requests[0].content)["lines"] == [
        {"sku": "BOOK-1", "quantity": 1, "unit_price_minor": 500}
    ]


def test_the_budget_spent_raises_unavailable_with_the_last_cause_and_how_to_ask_again() -> None:
    server = Script(*(httpx.ConnectError("refused") for _ in range(3)))

    with pytest.raises(Unavailable) as raised:
        checkout(server.client(), idempotency_key="k-1")

    assert raised.value.attempts == 3
    assert isinstance(raised.value.last_cause, httpx.ConnectError)
    assert raised.value.idempotency_key == "k-1"
    assert raised.value.order_id == json.loads(server.requests[0].content)["order_id"]


def test_a_call_that_may_have_been_applied_is_not_sent_again_unless_idempotent() -> None:
    server = Script(httpx.ReadTimeout("slow"))

    with pytest.raises(Unavailable, match="may have been applied"):
        server.client().ship("o-1")

    assert len(server.requests) == 1


def test_a_request_that_never_left_is_retried_even_when_not_idempotent() -> None:
    shipment = {
        "order_id": "o-1",
        "owner": "acme",
        "status": "SHIPPED",
        "lines": [],
        "short": None,
        "tracking_code": "T1",
        **{step.made_by: None for step in CARRIER_STEPS},
        "shipped_by": "dhl",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    server = Script(httpx.ConnectError("refused"), httpx.Response(200, json=shipment))

    assert server.client().ship("o-1").tracking_code == "T1"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (error(404, "not_found"), NotFound),
        (error(409, "idempotency_key_reused"), IdempotencyConflict),
        (error(409, "order_id_taken"), OrderIdTaken),
        (error(409, "wrong_state"), WrongState),
        (
            error(400, "invalid_parameter", fields=[{"field": "path.order_id", "message": "bad"}]),
            ValidationFailed,
        ),
    ],
)
def test_error_answers_are_raised_as_their_exception(answer: httpx.Response, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        Script(answer).client().order("o-1")


def test_a_422_names_the_fields_at_fault() -> None:
    server = Script(error(422, "validation_failed", fields=[{"field": "lines.0.quantity", "message": "> 0"}]))

    with pytest.raises(ValidationFailed) as raised:
        checkout(server.client())

    assert [(f.field, f.message) for f in raised.value.fields] == [("lines.0.quantity", "> 0")]
    assert raised.value.http_status == 422


def test_a_refused_cancel_says_the_order_status() -> None:
    server = Script(error(409, "not_cancellable", order_status="SHIPPED"))

    with pytest.raises(NotCancellable) as raised:
        server.client().cancel("o-1")

    assert raised.value.status == "SHIPPED"


def test_path_parameters_are_quoted_and_shared_routes_go_to_the_named_service() -> None:
    server = Script(httpx.Response(200, json={"items": [], "limit": 100, "offset": 0}))

    server.client().dead_letters(Service.DELIVERY, order_id="o/1")

    assert (
        str(server.requests[0].url) == "http://delivery.test/dead-letters?limit=100&offset=0&order_id=o%2F1"
    )


def test_the_async_client_runs_the_same_calls() -> None:
    server = Script(httpx.RemoteProtocolError("dropped"), accepted)

    async def main() -> str:
        async with AsyncSagaClient(CONFIG, transport=httpx.MockTransport(server)) as saga:
            answer = await saga.checkout(
                customer_id="c-1",
                currency="EUR",
                payment_method="tok_visa",
                lines=[("BOOK-1", 1, 100)],
                shipping_address=ADDRESS,
            )
            return answer.order_id

    order_id = asyncio.run(main())

    assert len({r.headers["Idempotency-Key"] for r in server.requests}) == 1
    assert order_id == json.loads(server.requests[1].content)["order_id"]


def test_configuration_comes_from_arguments_then_environment_then_defaults() -> None:
    env = {"SAGA_ORDER_URL": "http://order.env", "SAGA_CLIENT_RETRY_ATTEMPTS": "2"}

    config = ClientConfig.from_env(env, payment_url="http://pay.arg")

    assert config.url(Service.PAYMENT) == "http://pay.arg"
    assert config.url(Service.ORDER) == "http://order.env"
    assert config.url(Service.DELIVERY) == "http://127.0.0.1:8003"
    assert config.retry.attempts == 2
