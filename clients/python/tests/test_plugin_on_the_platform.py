"""The client and the plugin's fixtures on the real platform the plugin starts (Kafka, PostgreSQL, the
three services): what a shop's suite relies on."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

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
from saga_client.testing import Carrier, Faults, SagaEvents, SagaPlatform, StockFactory
from saga_client.testing.ledger import Ledger

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
        "Shipped",
        "Delivered",
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
