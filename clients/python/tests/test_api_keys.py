"""The client's API keys without a platform: each call sends its role's key, a refused key is a typed
error sent once, and no key ever shows in a repr or a message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from saga_client import ClientConfig, Forbidden, RetryPolicy, Role, SagaClient, Unauthenticated, Unavailable
from saga_client.calls import Calls
from saga_client.config import Service
from saga_client.models import CARRIER_STEPS
from saga_client.plans import HttpRequest, Plan, Reply

SHOP_KEY, CARRIER_KEY, OPERATOR_KEY = "saga_shop-secret", "saga_carrier-secret", "saga_operator-secret"
CONFIG = ClientConfig(
    payment_url="http://pay.test",
    order_url="http://order.test",
    delivery_url="http://delivery.test",
    retry=RetryPolicy(attempts=3, initial_delay=0.0, max_delay=0.0, jitter=0.0),
    api_key=SHOP_KEY,
    carrier_api_key=CARRIER_KEY,
    operator_api_key=OPERATOR_KEY,
)
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
SHIPMENT = {
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


class Server:
    """A mock server that answers every request with `status` and `body`, recording what it was sent."""

    def __init__(self, status: int = 200, body: object = None) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    def client(self, config: ClientConfig = CONFIG) -> SagaClient:
        return SagaClient(config, transport=httpx.MockTransport(self))

    def authorization(self) -> str | None:
        return self.requests[-1].headers.get("Authorization")


def authorization(plan: Plan[Any]) -> str | None:
    """The Authorization header of the first request a plan would send."""
    request = next(plan)
    assert isinstance(request, HttpRequest)
    return request.headers.get("Authorization")


@pytest.mark.parametrize(
    ("plan", "key"),
    [
        (lambda calls: calls.order("o-1"), SHOP_KEY),
        (lambda calls: calls.cancel("o-1"), SHOP_KEY),
        (lambda calls: calls.stock("SKU-1"), SHOP_KEY),
        *[
            (lambda calls, step=step.name: calls.carrier_step("o-1", step), CARRIER_KEY)
            for step in CARRIER_STEPS
        ],
        (lambda calls: calls.set_stock("SKU-1", 3), OPERATOR_KEY),
        (lambda calls: calls.retry_refund("acme:o-1"), OPERATOR_KEY),
        (lambda calls: calls.dead_letters(Service.ORDER), OPERATOR_KEY),
        (lambda calls: calls.health(Service.ORDER), None),
        (lambda calls: calls.readiness(Service.ORDER), None),
    ],
    ids=[
        "read",
        "cancel",
        "stock read",
        *[step.name for step in CARRIER_STEPS],
        "stock count",
        "refund retry",
        "dead letters",
        "health",
        "readiness",
    ],
)
def test_each_call_sends_the_key_of_its_role_and_public_ones_none(
    plan: Callable[[Calls], Plan[Any]], key: str | None
) -> None:
    assert authorization(plan(Calls(CONFIG))) == (None if key is None else f"Bearer {key}")


def test_a_refund_retry_of_the_shops_own_order_id_asks_whose_it_is_then_names_it_with_its_shop() -> None:
    plan = Calls(CONFIG).retry_refund("o-1")
    read = next(plan)
    assert isinstance(read, HttpRequest)
    assert read.url.endswith("/payments/o-1") and read.headers["Authorization"] == f"Bearer {SHOP_KEY}"
    payment = {
        "payment_id": "6f1c1a52-4a5e-4b8e-9a34-0d7b1d0b7a11",
        "order_id": "o-1",
        "owner": "acme",
        "customer_id": "c-1",
        "status": "REFUND_FAILED",
        "amount": {"amount_minor": 100, "currency": "EUR"},
        "lines": [],
        "failure_reason": None,
        "gateway_reference": None,
        "created_at": "2026-12-06T05:00:00+00:00",
        "updated_at": "2026-12-06T05:00:00+00:00",
        "refund": None,
    }
    retry = plan.send(Reply(200, {"content-type": "application/json"}, json.dumps(payment).encode()))

    assert isinstance(retry, HttpRequest)
    assert unquote(retry.url).endswith("/payments/acme:o-1/refund/retry")
    assert retry.headers["Authorization"] == f"Bearer {OPERATOR_KEY}"


def test_a_checkout_sends_the_shops_key_beside_its_idempotency_key() -> None:
    request = next(
        Calls(CONFIG).checkout(
            customer_id="c-1",
            currency="EUR",
            payment_method="tok_visa",
            lines=[("BOOK-1", 1, 100)],
            shipping_address=ADDRESS,
        )
    )

    assert isinstance(request, HttpRequest)
    assert request.headers["Authorization"] == f"Bearer {SHOP_KEY}"
    assert "Idempotency-Key" in request.headers


def test_a_role_without_a_key_of_its_own_sends_the_shops_over_the_wire() -> None:
    server = Server(body=SHIPMENT)

    server.client(ClientConfig(delivery_url="http://delivery.test", api_key=SHOP_KEY)).ship("o-1")

    assert server.authorization() == f"Bearer {SHOP_KEY}"


def test_no_key_at_all_sends_no_authorization_header() -> None:
    assert authorization(Calls(ClientConfig()).ship("o-1")) is None


def test_keys_come_from_arguments_then_the_environment() -> None:
    env = {"SAGA_API_KEY": "from-env", "SAGA_OPERATOR_API_KEY": "operator-from-env"}

    config = ClientConfig.from_env(env, carrier_api_key="carrier-from-argument")

    assert config.key_for(Role.SHOP) == "from-env"
    assert config.key_for(Role.CARRIER) == "carrier-from-argument"
    assert config.key_for(Role.OPERATOR) == "operator-from-env"
    assert ClientConfig.from_env(env, api_key="argument").key_for(Role.SHOP) == "argument"
    assert ClientConfig.from_env({}).key_for(Role.OPERATOR) is None


def test_acting_as_a_role_sends_its_key_on_every_call() -> None:
    shop_only = CONFIG.acting_as(Role.SHOP)

    assert {shop_only.key_for(role) for role in Role} == {SHOP_KEY}


def test_a_401_is_unauthenticated_with_the_servers_message_sent_once() -> None:
    server = Server(401, {"error": "unauthenticated", "message": "send an active API key"})

    with pytest.raises(Unauthenticated) as refused:
        server.client(ClientConfig(delivery_url="http://delivery.test")).set_stock("SKU-1", 3)

    assert len(server.requests) == 1  # the same key would be refused again: not retried
    assert refused.value.http_status == 401
    assert refused.value.message == "send an active API key"
    assert "no API key (set SAGA_OPERATOR_API_KEY or SAGA_API_KEY)" in str(refused.value)


def test_a_403_is_forbidden_and_names_the_key_sent_never_showing_it() -> None:
    server = Server(403, {"error": "forbidden", "message": "it needs the scope operator"})
    shop_only = ClientConfig(delivery_url="http://delivery.test", api_key=SHOP_KEY)

    with pytest.raises(Forbidden) as refused:
        server.client(shop_only).set_stock("SKU-1", 3)

    assert len(server.requests) == 1
    assert "it needs the scope operator" in str(refused.value)
    assert "api_key (SAGA_API_KEY), SAGA_OPERATOR_API_KEY being unset" in str(refused.value)
    assert SHOP_KEY not in str(refused.value) + repr(refused.value)


def test_no_key_shows_in_the_reprs_of_the_configuration_and_the_request() -> None:
    request = next(Calls(CONFIG).set_stock("SKU-1", 3))

    shown = repr(CONFIG) + str(CONFIG) + repr(request) + str(request)

    for key in (SHOP_KEY, CARRIER_KEY, OPERATOR_KEY):
        assert key not in shown
    assert "api_key=<hidden>" in repr(CONFIG)
    assert "'Authorization': '<hidden>'" in repr(request)


def test_no_key_shows_in_the_message_of_a_call_that_got_no_answer() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(Unavailable) as failed:
        SagaClient(CONFIG, transport=httpx.MockTransport(unreachable)).set_stock("SKU-1", 3)

    assert SHOP_KEY not in str(failed.value) and OPERATOR_KEY not in str(failed.value)
    assert OPERATOR_KEY not in repr(failed.value.last_cause)


def test_a_checkout_under_a_key_without_an_order_id_sends_the_keys_own_order_id_every_time() -> None:
    def sent(key: str | None, lines: list[tuple[str, int, int]]) -> Any:
        request = next(
            Calls(CONFIG).checkout(
                customer_id="c-1",
                currency="EUR",
                payment_method="tok_visa",
                lines=lines,
                shipping_address=ADDRESS,
                idempotency_key=key,
            )
        )
        assert isinstance(request, HttpRequest)
        return request.json

    cart = [("BOOK-1", 1, 100)]
    assert sent("cart-42", cart) == sent("cart-42", cart)  # another process, a restart: the same body
    assert sent("cart-42", cart)["order_id"] != sent("cart-43", cart)["order_id"]
    assert sent(None, cart)["order_id"] != sent(None, cart)["order_id"]  # no key: a fresh order each time
