"""The checkout use case on fakes (an in-memory store, the simulator gateway): replays, conflicts and a
gateway that does not answer, in milliseconds. The SQL store is covered by the end-to-end tests and
tests/integration/test_payment_store.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from payment.checkout import (
    GATEWAY_TIMEOUT,
    CheckoutRequest,
    IdempotencyConflict,
    OrderIdTaken,
    checkout,
    recover_pending,
)
from payment.domain import PaymentStatus
from payment.gateway import SimulatorGateway
from tests.fakes.payment_store import FakePaymentStore

ORDERS = "http://orders.test"
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}


def request(card: str = "tok_visa", **changes: Any) -> CheckoutRequest:
    body = {
        "customer_id": "c-1",
        "currency": "EUR",
        "payment_method": card,
        "lines": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 1250}],
        "shipping_address": ADDRESS,
        **changes,
    }
    return CheckoutRequest.model_validate(body)


@pytest.fixture()
def store() -> FakePaymentStore:
    return FakePaymentStore()


@pytest.fixture()
def gateway() -> SimulatorGateway:
    return SimulatorGateway(timeout_seconds=0.01)


async def test_a_new_key_charges_once_and_emits_payment_completed(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    answer = await checkout(
        store, gateway, owner="acme", idempotency_key="k-1", request=request(), order_url=ORDERS
    )

    assert answer.status == 202 and answer.body["status"] == "CAPTURED"
    assert answer.body["order_url"] == f"{ORDERS}/orders/{answer.body['order_id']}"
    [event] = store.events
    assert event.type == "PaymentCompleted" and event.payload["amount"]["amount_minor"] == 2500
    assert gateway.charge_calls == 1


async def test_the_same_key_and_body_again_gets_the_first_answer_and_charges_nothing_more(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    first = await checkout(
        store, gateway, owner="acme", idempotency_key="k-1", request=request(), order_url=ORDERS
    )
    again = await checkout(
        store, gateway, owner="acme", idempotency_key="k-1", request=request(), order_url=ORDERS
    )

    assert again == first
    assert gateway.charge_calls == 1 and len(store.events) == 1


async def test_the_same_key_with_another_body_is_a_conflict_and_charges_nothing(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    await checkout(store, gateway, owner="acme", idempotency_key="k-1", request=request(), order_url=ORDERS)

    with pytest.raises(IdempotencyConflict):
        await checkout(
            store,
            gateway,
            owner="acme",
            idempotency_key="k-1",
            request=request(customer_id="c-2"),
            order_url=ORDERS,
        )
    assert gateway.charge_calls == 1 and len(store.events) == 1


async def test_another_key_for_an_order_id_already_paid_is_refused(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    await checkout(
        store, gateway, owner="acme", idempotency_key="k-1", request=request(order_id="o-1"), order_url=ORDERS
    )

    with pytest.raises(OrderIdTaken):
        await checkout(
            store,
            gateway,
            owner="acme",
            idempotency_key="k-2",
            request=request(order_id="o-1"),
            order_url=ORDERS,
        )


async def test_a_gateway_that_never_answers_fails_the_payment_after_one_retry_and_charges_nothing(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    answer = await checkout(
        store, gateway, owner="acme", idempotency_key="k-1", request=request("tok_timeout"), order_url=ORDERS
    )

    assert (answer.body["status"], answer.body["decline_reason"]) == ("FAILED", GATEWAY_TIMEOUT)
    assert gateway.charge_calls == 2
    [event] = store.events
    assert event.type == "PaymentFailed" and event.payload["reason"] == GATEWAY_TIMEOUT


async def test_a_declined_card_is_declined_with_the_gateway_s_reason(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    answer = await checkout(
        store, gateway, owner="acme", idempotency_key="k-1", request=request("tok_declined"), order_url=ORDERS
    )

    assert (answer.body["status"], answer.body["decline_reason"]) == ("DECLINED", "card_declined")
    assert [event.type for event in store.events] == ["PaymentFailed"]


async def test_a_replay_that_loses_the_race_answers_what_the_winner_kept_and_emits_nothing(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    """Two requests with one key, both past the record before either settled: one charge at the gateway
    (same idempotency key), one event, and the same answer for both."""

    class SlowGateway(SimulatorGateway):
        async def charge(self, **call: Any) -> Any:
            await asyncio.sleep(0.01)  # both requests are at the gateway at once
            return await super().charge(**call)

    slow = SlowGateway(timeout_seconds=0.01)
    first, second = await asyncio.gather(
        *(
            checkout(store, slow, owner="acme", idempotency_key="k-1", request=request(), order_url=ORDERS)
            for _ in range(2)
        )
    )

    assert first == second
    assert len(store.events) == 1 and slow.charge_calls == 2  # the gateway answered the key's first result


async def test_an_interrupted_checkout_is_finished_by_asking_the_gateway_again_with_the_same_key(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    attempt = await store.record_attempt("k-1", "fp", "o-1", request(order_id="o-1"))
    # The crash: the gateway charged, the outcome was never recorded.
    await gateway.charge(
        idempotency_key=str(attempt.payment_id), amount_minor=2500, currency="EUR", payment_method="tok_visa"
    )

    assert await recover_pending(store, gateway, older_than=timedelta(0), order_url=ORDERS) == 1
    assert store.payments["o-1"] == (attempt.payment_id, PaymentStatus.CAPTURED)
    assert [event.type for event in store.events] == ["PaymentCompleted"]
    assert await recover_pending(store, gateway, older_than=timedelta(0), order_url=ORDERS) == 0


async def test_two_shops_may_use_the_same_order_id_and_each_starts_its_own_saga(
    store: FakePaymentStore, gateway: SimulatorGateway
) -> None:
    acme = await checkout(
        store,
        gateway,
        owner="acme",
        idempotency_key="acme/k",
        request=request(order_id="o-1"),
        order_url=ORDERS,
    )
    globex = await checkout(
        store,
        gateway,
        owner="globex",
        idempotency_key="globex/k",
        request=request(order_id="o-1"),
        order_url=ORDERS,
    )

    assert acme.body["order_id"] == globex.body["order_id"] == "o-1"  # each shop's own id
    assert acme.body["order_url"] == f"{ORDERS}/orders/o-1"
    assert acme.body["payment_id"] != globex.body["payment_id"]
    assert [(event.order_id, event.owner) for event in store.events] == [
        ("acme:o-1", "acme"),
        ("globex:o-1", "globex"),
    ]
    assert gateway.charge_calls == 2
