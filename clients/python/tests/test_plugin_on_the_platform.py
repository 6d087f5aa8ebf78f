"""The client and the plugin's fixtures on the real platform the plugin starts (Kafka, PostgreSQL, the
three services): what a shop's suite relies on."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from dropping_proxy import DroppingProxy

from saga_client import (
    AsyncSagaClient,
    ClientConfig,
    Forbidden,
    IdempotencyConflict,
    NotCancellable,
    NotFound,
    Role,
    SagaClient,
    Service,
    Unauthenticated,
    UnexpectedOutcome,
    ValidationFailed,
)
from saga_client.checker import wait_until_consistent
from saga_client.config import KEY_VARIABLES, URL_VARIABLES
from saga_client.models import CARRIER_STEPS
from saga_client.testing import Carrier, Faults, SagaEvents, SagaPlatform, SagaWebhooks, StockFactory
from saga_client.testing.ledger import Ledger

# The carrier's steps as a completed order went through them, from the client's one table of steps: each
# step's event is named after the status it reaches (Shipped, Delivered), and the shop is told of each step
# but the last, whose event completes the order (order.shipped, then order.completed).
STEP_EVENTS = [step.reached.value.capitalize() for step in CARRIER_STEPS]
STEP_WEBHOOKS = [f"order.{step.reached.value.lower()}" for step in CARRIER_STEPS[:-1]]
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}


def cart(sku: str, quantity: int = 1, *, card: str = "tok_visa", customer: str = "c-1") -> dict[str, Any]:
    return {
        "customer_id": customer,
        "currency": "EUR",
        "payment_method": card,
        "lines": [(sku, quantity, 1250)],
        "shipping_address": ADDRESS,
    }


def test_a_checkout_completes_and_saga_events_show_its_whole_saga(
    saga: SagaClient,
    saga_stock: StockFactory,
    saga_carrier: Carrier,
    saga_events: SagaEvents,
    assert_saga_consistent: Any,
) -> None:
    sku = saga_stock(5)
    accepted = saga.checkout(**cart(sku, 2))

    saga_carrier.deliver(accepted.order_id)
    order = saga.wait_for(accepted.order_id)

    assert order.status == "COMPLETED"
    assert order.amount.amount_minor == 2500
    saga_events.wait_for("OrderCompleted", order_id=accepted.order_id)
    assert saga_events.types(accepted.order_id) == [
        "PaymentCompleted",
        "OrderPlaced",
        "DeliveryScheduled",
        *STEP_EVENTS,
        "OrderCompleted",
    ]
    assert saga.stock(sku).model_dump() == {
        "sku": sku,
        "on_hand": 3,
        "reserved": 0,
        "shipped": 2,
        "stocked": 5,
        "updated_by": "demo-operator",
    }
    assert_saga_consistent()


def test_a_completed_order_is_told_to_the_shops_webhook_in_order_and_signed(
    saga: SagaClient, saga_stock: StockFactory, saga_carrier: Carrier, saga_webhooks: SagaWebhooks
) -> None:
    accepted = saga.checkout(**cart(saga_stock(5)))

    saga_carrier.deliver(accepted.order_id)
    completed = saga_webhooks.wait_for(accepted.order_id, "order.completed")

    saga_webhooks.assert_in_order(accepted.order_id)
    saga_webhooks.assert_all_verified()
    assert [e.type for e in saga_webhooks.events_of(accepted.order_id)] == [
        "order.placed",
        "order.scheduled",
        *STEP_WEBHOOKS,
        "order.completed",
    ]
    assert completed.order.status == "COMPLETED"
    assert completed.order.amount.amount_minor == 1250


def test_a_retry_after_a_dropped_connection_creates_exactly_one_order(
    saga_platform: SagaPlatform, saga: SagaClient, saga_stock: StockFactory, saga_carrier: Carrier
) -> None:
    """The proxy lets payment apply the first request and drops its answer; the client sends it again
    with the same Idempotency-Key, and is answered the first order, charged once."""
    sku = saga_stock(5)
    customer = f"dropped-{uuid.uuid4().hex[:8]}"
    with (
        DroppingProxy(saga_platform.urls["payment"], drops=1).running() as proxy,
        SagaClient(saga_platform.client_config(), payment_url=proxy.url) as through_proxy,
    ):
        accepted = through_proxy.checkout(**cart(sku, 2, customer=customer))

    assert len(proxy.keys_seen) == 2 and len(set(proxy.keys_seen)) == 1  # sent twice, one key
    saga_carrier.deliver(accepted.order_id)
    assert saga.wait_for(accepted.order_id).status == "COMPLETED"
    orders = saga.orders(limit=500).items
    assert [o.order_id for o in orders if o.customer_id == customer] == [accepted.order_id]
    assert saga.stock(sku).shipped == 2  # one reservation, one parcel
    assert saga.payment(accepted.order_id).amount.amount_minor == 2500


def test_the_async_client_runs_a_saga_to_its_end(
    saga_platform: SagaPlatform, saga_stock: StockFactory
) -> None:
    sku = saga_stock(1)

    async def out_of_stock() -> str:
        async with AsyncSagaClient(saga_platform.client_config()) as saga:
            accepted = await saga.checkout(**cart(sku, 3))
            order = await saga.wait_for(accepted.order_id, "REFUNDED")
            return str(order.cancel_reason)

    assert asyncio.run(out_of_stock()) == "out_of_stock"


def test_error_answers_arrive_as_exceptions_with_the_servers_fields(
    saga: SagaClient, saga_stock: StockFactory, saga_carrier: Carrier
) -> None:
    sku = saga_stock(5)
    with pytest.raises(ValidationFailed) as invalid:
        saga.checkout(**{**cart(sku), "lines": [(sku, 0, 1250)]})
    assert "lines.0.quantity" in [problem.field for problem in invalid.value.fields]

    key = f"reused-{uuid.uuid4().hex}"
    first = saga.checkout(**cart(sku), idempotency_key=key)
    with pytest.raises(IdempotencyConflict):
        saga.checkout(**cart(sku, 2), idempotency_key=key)  # another cart under the same key

    saga_carrier.ship(first.order_id)
    saga.wait_for(first.order_id, "SHIPPED")
    with pytest.raises(NotCancellable) as refused:
        saga.cancel(first.order_id)
    assert refused.value.status == "SHIPPED"
    saga_carrier.deliver(first.order_id)

    with pytest.raises(NotFound):
        saga.order("never-accepted-" + uuid.uuid4().hex[:8])


def test_waiting_for_a_status_the_saga_can_no_longer_reach_fails_at_once(
    saga: SagaClient, saga_stock: StockFactory
) -> None:
    accepted = saga.checkout(**cart(saga_stock(5), card="tok_declined"))

    with pytest.raises(UnexpectedOutcome) as ended:
        saga.wait_for(accepted.order_id, "COMPLETED", timeout=60)

    assert ended.value.order.status == "REJECTED"


def test_the_checker_reports_a_saga_that_has_not_ended(
    saga: SagaClient,
    saga_stock: StockFactory,
    saga_carrier: Carrier,
    saga_ledger: Ledger,
    assert_saga_consistent: Any,
) -> None:
    accepted = saga.checkout(**cart(saga_stock(5)))
    saga.wait_for(accepted.order_id, "SCHEDULED")

    report = wait_until_consistent(saga, saga_ledger.checkouts, saga_ledger.skus, timeout=0.5)

    assert any(f"order {accepted.order_id}: SCHEDULED, not ended" in v for v in report.violations)
    saga_carrier.deliver(accepted.order_id)
    assert_saga_consistent()


def test_a_session_sets_how_the_platform_runs_here_two_refund_attempts(
    saga: SagaClient, saga_stock: StockFactory, assert_saga_consistent: Any
) -> None:
    accepted = saga.checkout(**cart(saga_stock(1), 2, card="tok_refund_fails"))  # out of stock: refund

    assert saga.wait_for(accepted.order_id).status == "REFUND_FAILED"
    refund = saga.payment(accepted.order_id).refund
    assert refund is not None and refund.attempts == 2
    assert_saga_consistent()


def test_an_order_accepted_while_the_broker_is_paused_is_never_unknown_and_ends(
    saga: SagaClient,
    saga_stock: StockFactory,
    saga_carrier: Carrier,
    saga_faults: Faults,
    assert_saga_consistent: Any,
) -> None:
    sku = saga_stock(5)
    with saga_faults.broker_paused():
        accepted = saga.checkout(**cart(sku))
        assert saga.order(accepted.order_id).status == "ACCEPTED"  # payment has it; the order service not yet

    saga_carrier.deliver(accepted.order_id, timeout=60)
    assert saga.wait_for(accepted.order_id, timeout=60).status == "COMPLETED"
    assert_saga_consistent(timeout=60)


def checkout_once(platform: SagaPlatform, body: dict[str, Any], key: str) -> tuple[httpx.Response, float]:
    """One `POST /checkout` as a shop sends it, not retried, with the client's 10 s timeout (a hang fails
    the test): the answer, and how long it took."""
    sku, quantity, price = body["lines"][0]
    began = time.monotonic()
    answer = httpx.post(
        f"{platform.urls[Service.PAYMENT]}/checkout",
        json={**body, "lines": [{"sku": sku, "quantity": quantity, "unit_price_minor": price}]},
        headers={"Authorization": f"Bearer {platform.api_keys[Role.SHOP]}", "Idempotency-Key": key},
        timeout=10.0,
    )
    return answer, time.monotonic() - began


def test_while_the_database_is_down_the_checkout_answers_503_at_once_and_every_saga_ends_once_it_is_back(
    saga_platform: SagaPlatform,
    saga: SagaClient,
    saga_stock: StockFactory,
    saga_carrier: Carrier,
    saga_faults: Faults,
    assert_saga_consistent: Any,
) -> None:
    """PostgreSQL crashes (SIGKILL) right after a checkout, with that saga on its way; a checkout sent
    meanwhile is refused with 503 and Retry-After, and sent again with its key after the restart it is
    accepted. Nothing is restarted but the database: the services' pools connect anew."""
    sku, key = saga_stock(5), f"cart-{uuid.uuid4().hex}"
    body = {**cart(sku), "order_id": f"db-down-{uuid.uuid4().hex[:12]}"}
    in_flight = saga.checkout(**cart(sku))
    with saga_faults.database_down():
        refused, seconds = checkout_once(saga_platform, body, key)
        readiness = saga.readiness(Service.ORDER)
    back = time.monotonic()
    retried = saga.checkout(**body, idempotency_key=key)  # the shop's retry: same key, same body

    assert (refused.status_code, refused.headers.get("Retry-After")) == (503, "1")
    assert seconds < 2.0
    assert not readiness.ready and readiness.checks["database"].startswith("failed")
    for accepted in (in_flight, retried):
        saga_carrier.deliver(accepted.order_id)
        assert saga.wait_for(accepted.order_id).status == "COMPLETED"
    ended = time.monotonic() - back
    print(f"FAULT database-down: 503 in {seconds:.2f} s; sagas COMPLETED {ended:.1f} s after the restart")
    assert ended < 15.0
    assert saga_platform.local is not None and saga_platform.local.died() == {}
    assert_saga_consistent()


def test_while_the_database_is_frozen_the_checkout_answers_503_within_the_clients_timeout_then_sagas_end(
    saga_platform: SagaPlatform,
    saga: SagaClient,
    saga_stock: StockFactory,
    saga_carrier: Carrier,
    saga_faults: Faults,
    assert_saga_consistent: Any,
) -> None:
    """PostgreSQL frozen (SIGSTOP: connections open, statements wait) with a saga on its way: a checkout
    waits no longer than the platform's answer deadline (5 s), never the shop's 10 s timeout. That
    checkout may still be applied once the database answers (the request was in), so the shop sends it
    again with its key: one order either way."""
    sku, key = saga_stock(5), f"cart-{uuid.uuid4().hex}"
    body = {**cart(sku), "order_id": f"db-frozen-{uuid.uuid4().hex[:12]}"}
    in_flight = saga.checkout(**cart(sku))
    with saga_faults.database_paused():
        refused, seconds = checkout_once(saga_platform, body, key)
    back = time.monotonic()
    retried = saga.checkout(**body, idempotency_key=key)

    assert (refused.status_code, refused.headers.get("Retry-After")) == (503, "1")
    assert seconds < 7.0
    for accepted in (in_flight, retried):
        saga_carrier.deliver(accepted.order_id)
        assert saga.wait_for(accepted.order_id).status == "COMPLETED"
    ended = time.monotonic() - back
    print(f"FAULT database-paused: 503 in {seconds:.2f} s; sagas COMPLETED {ended:.1f} s after the resume")
    assert ended < 15.0
    assert saga.stock(sku).shipped == 2  # two orders, not three
    assert_saga_consistent()


def test_an_order_service_cut_off_from_the_broker_holds_its_saga_and_the_saga_ends_after_the_repair(
    saga: SagaClient,
    saga_stock: StockFactory,
    saga_carrier: Carrier,
    saga_faults: Faults,
    assert_saga_consistent: Any,
) -> None:
    """The order service partitioned from Kafka (its connections open, unanswered): payment still accepts
    the checkout, and the order goes no further until the link is repaired."""
    sku = saga_stock(5)
    with saga_faults.cut_off_from_broker("order"):
        accepted = saga.checkout(**cart(sku))  # payment reaches its database and the broker: 202
        readiness = saga.readiness(Service.ORDER)  # waits out the broker check's timeout (3 s)
        assert saga.order(accepted.order_id).status == "ACCEPTED"  # the order service has heard nothing
        assert saga.readiness(Service.PAYMENT).ready  # only the order service is cut off
    back = time.monotonic()

    assert not readiness.ready and readiness.checks["broker"].startswith("failed")
    saga_carrier.deliver(accepted.order_id)
    assert saga.wait_for(accepted.order_id).status == "COMPLETED"
    ended = time.monotonic() - back
    print(f"FAULT order-cut-from-broker: the saga COMPLETED {ended:.1f} s after the repair")
    assert ended < 15.0
    assert_saga_consistent()


def test_heal_mends_a_crashed_database_a_frozen_service_and_a_cut_link_left_in_place(
    saga_platform: SagaPlatform,
    saga: SagaClient,
    saga_stock: StockFactory,
    saga_carrier: Carrier,
    saga_faults: Faults,
) -> None:
    """What the fixture does after a test that left its faults in place: the next test's checkout goes
    through the whole saga at once."""
    sku = saga_stock(5)
    saga_faults.cut_from_broker("delivery")
    saga_faults.pause("payment")
    saga_faults.kill_database()
    assert saga_platform.local is not None and not saga_platform.local.database_running

    saga_faults.heal()

    assert saga_platform.local.database_running
    assert not any(link.is_cut for link in saga_platform.local.broker_links.values())
    accepted = saga.checkout(**cart(sku))
    saga_carrier.deliver(accepted.order_id, timeout=15)
    assert saga.wait_for(accepted.order_id, timeout=15).status == "COMPLETED"


def test_the_started_platform_asks_for_keys_and_the_plugin_holds_each_roles_demo_key(
    saga_platform: SagaPlatform, saga: SagaClient, saga_stock: StockFactory
) -> None:
    sku = saga_stock(2)  # the operator's key counted it
    assert saga.readiness(Service.DELIVERY).authentication == "on"
    assert set(saga_platform.api_keys) == set(Role)
    assert len(set(saga_platform.api_keys.values())) == 3  # one key a role, not one key for all
    assert not any(
        key in repr(saga_platform) + saga_platform.describe() for key in saga_platform.api_keys.values()
    )

    with saga_platform.client(acting_as=Role.SHOP) as shop:
        assert shop.stock(sku).on_hand == 2  # reading stock is the shop's
        with pytest.raises(Forbidden):
            shop.set_stock(sku, 99)  # counting it is not
    keyless = ClientConfig(delivery_url=saga_platform.urls[Service.DELIVERY])
    with SagaClient(keyless) as stranger, pytest.raises(Unauthenticated):
        stranger.stock(sku)
    assert saga.stock(sku).on_hand == 2


_CHECKOUT_FROM_ANOTHER_PROCESS = """
import json, sys
from saga_client import ClientConfig, SagaClient
cart = json.loads(sys.argv[1])
cart["lines"] = [tuple(line) for line in cart["lines"]]  # (sku, quantity, unit price)
with SagaClient(ClientConfig.from_env()) as client:  # the platform's URLs and the shop's key
    accepted = client.checkout(**cart, idempotency_key=sys.argv[2])
print(json.dumps({"order_id": accepted.order_id, "payment_id": str(accepted.payment_id)}))
"""


def test_the_same_cart_under_the_same_key_from_other_processes_and_threads_is_one_order_charged_once(
    saga_platform: SagaPlatform, saga: SagaClient, saga_stock: StockFactory, saga_carrier: Carrier
) -> None:
    """The README's pattern: the cart id as the Idempotency-Key, sent again by a restarted worker or
    another process that does not know whether the first request arrived."""
    sku, key = saga_stock(5), f"cart-{uuid.uuid4().hex}"
    body = {**cart(sku, 2), "lines": [[sku, 2, 1250]]}
    env = {
        **os.environ,
        **{URL_VARIABLES[service]: url for service, url in saga_platform.urls.items()},
        KEY_VARIABLES[Role.SHOP]: saga_platform.api_keys[Role.SHOP],
    }

    def from_a_process() -> dict[str, str]:
        run = subprocess.run(
            [sys.executable, "-c", _CHECKOUT_FROM_ANOTHER_PROCESS, json.dumps(body), key],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        return dict(json.loads(run.stdout))

    first, second = from_a_process(), from_a_process()
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda _: saga.checkout(**cart(sku, 2), idempotency_key=key), range(8)))

    assert first == second
    assert {(a.order_id, str(a.payment_id)) for a in answers} == {(first["order_id"], first["payment_id"])}
    with pytest.raises(IdempotencyConflict):  # another cart under the same key
        saga.checkout(**cart(sku, 3), idempotency_key=key)
    saga_carrier.deliver(first["order_id"])
    assert saga.wait_for(first["order_id"]).status == "COMPLETED"
    assert saga.stock(sku).shipped == 2  # one order, charged and shipped once
