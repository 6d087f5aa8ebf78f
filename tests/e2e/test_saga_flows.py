"""The saga end to end over HTTP: real services, real Kafka, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from common.config import Service
from delivery.lifecycle import CarrierStep
from tests.carrier_steps import CARRIER_STEPS, STEP_EVENTS, steps_after, steps_through
from tests.chaos.harness import produce_raw
from tests.e2e.conftest import DEADLINE_SECONDS, Platform, Shop
from tests.invariants import wait_until_quiet
from tests.keys import SUITE_SHOP


def _count(platform: Platform, service: str, query: str, *params: Any) -> int:
    url = platform.database_urls[service].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def _events(platform: Platform, service: str, order_id: str, event_type: str) -> int:
    return _count(
        platform,
        service,
        "SELECT count(*) FROM outbox WHERE key = %s AND event_type = %s",
        _saga(order_id),
        event_type,
    )


def _saga(order_id: str) -> str:
    """The saga id the services store: the suite's key is the shop that owns the order."""
    return f"{SUITE_SHOP}:{order_id}"


def test_happy_path_completes_after_ship_and_deliver_charging_once_and_taking_stock(
    shop: Shop, platform: Platform
) -> None:
    sku = shop.stock(10)
    answer = shop.checkout([(sku, 3)])
    assert answer["status"] == "CAPTURED"
    order_id = answer["order_id"]

    shop.ship_and_deliver(order_id)
    order = shop.wait_for(order_id, "COMPLETED")

    assert [e["event_type"] for e in order["timeline"] if e["kind"] == "emitted"] == [
        "OrderPlaced",
        "OrderCompleted",
    ]
    assert shop.payment(order_id)["status"] == "CAPTURED"
    assert (
        _count(platform, "payment", "SELECT count(*) FROM payments WHERE order_id = %s", _saga(order_id)) == 1
    )
    assert shop.inventory(sku) == {
        "sku": sku,
        "on_hand": 7,
        "reserved": 0,
        "shipped": 3,
        "stocked": 10,
        "updated_by": SUITE_SHOP,
    }


def test_out_of_stock_cancels_and_refunds_the_full_amount_once_without_touching_stock(
    shop: Shop, platform: Platform
) -> None:
    plenty, scarce = shop.stock(10), shop.stock(1)
    order_id = shop.checkout([(plenty, 1), (scarce, 2)])["order_id"]

    order = shop.wait_for(order_id, "REFUNDED")

    assert order["cancel_reason"] == "out_of_stock"
    payment = shop.payment(order_id)
    assert payment["status"] == "REFUNDED"
    assert payment["refund"]["status"] == "SUCCEEDED"
    assert payment["refund"]["amount"] == payment["amount"] == {"amount_minor": 3 * 1250, "currency": "EUR"}
    assert (
        _count(platform, "payment", "SELECT count(*) FROM refunds WHERE order_id = %s", _saga(order_id)) == 1
    )
    assert shop.inventory(plenty)["on_hand"] == 10 and shop.inventory(plenty)["reserved"] == 0
    assert shop.inventory(scarce)["on_hand"] == 1
    shipment = shop.wait_for_shipment(order_id, "OUT_OF_STOCK")
    assert shipment["short"] == [{"sku": scarce, "requested": 2, "available": 1}]


def test_declined_card_rejects_the_order_and_nothing_reaches_delivery(shop: Shop, platform: Platform) -> None:
    sku = shop.stock(5)
    answer = shop.checkout([(sku, 1)], card="tok_declined")
    assert answer["status"] == "DECLINED"

    order = shop.wait_for(answer["order_id"], "REJECTED")

    assert [e["event_type"] for e in order["timeline"] if e["kind"] == "emitted"] == []
    assert shop.http.get(shop.url(Service.DELIVERY, f"/shipments/{answer['order_id']}")).status_code == 404
    assert shop.payment(answer["order_id"])["refund"] is None
    assert shop.inventory(sku)["on_hand"] == 5


def test_gateway_timeout_fails_the_payment_and_rejects_the_order(shop: Shop) -> None:
    answer = shop.checkout([(shop.stock(5), 1)], card="tok_timeout")
    assert answer["status"] == "FAILED"
    assert answer["decline_reason"] == "gateway_timeout"
    shop.wait_for(answer["order_id"], "REJECTED")


def test_customer_cancel_before_shipment_asks_delivery_then_releases_stock_and_refunds_once(
    shop: Shop, platform: Platform
) -> None:
    sku = shop.stock(4)
    order_id = shop.checkout([(sku, 2)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    assert shop.inventory(sku)["reserved"] == 2

    response = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "CANCELLING" and response.json()["cancellation"] == "requested"
    again = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert again.status_code == 202

    order = shop.wait_for(order_id, "REFUNDED")
    assert order["cancel_reason"] == "customer"
    assert order["cancellation"]["status"] == "confirmed"
    received = [e["event_type"] for e in order["timeline"] if e["kind"] in ("received", "emitted")]
    # The refund follows delivery's confirmation, never the request alone.
    assert received.index("CancellationConfirmed") < received.index("OrderCancelled")
    assert received.index("OrderCancellationRequested") < received.index("CancellationConfirmed")
    shop.wait_for_shipment(order_id, "RELEASED")
    assert shop.inventory(sku) == {
        "sku": sku,
        "on_hand": 4,
        "reserved": 0,
        "shipped": 0,
        "stocked": 4,
        "updated_by": SUITE_SHOP,
    }
    assert (
        _count(platform, "payment", "SELECT count(*) FROM refunds WHERE order_id = %s", _saga(order_id)) == 1
    )
    assert _events(platform, "order", order_id, "OrderCancelled") == 1
    assert _events(platform, "order", order_id, "OrderCancellationRequested") == 1


def test_customer_cancel_after_shipment_is_409_and_changes_nothing(shop: Shop, platform: Platform) -> None:
    sku = shop.stock(4)
    order_id = shop.checkout([(sku, 1)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    for step in steps_through(CarrierStep.SHIP):
        assert shop.http.post(shop.url(Service.DELIVERY, f"/shipments/{order_id}/{step}")).status_code == 200
    shop.wait_for(order_id, "SHIPPED")

    response = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))

    assert response.status_code == 409
    assert "ship" in response.json()["message"].lower()
    assert response.json()["order_status"] == "SHIPPED"
    assert shop.order(order_id)["status"] == "SHIPPED"
    assert _events(platform, "order", order_id, "OrderCancelled") == 0
    assert shop.payment(order_id)["refund"] is None
    for step in steps_after(CarrierStep.SHIP):
        assert shop.http.post(shop.url(Service.DELIVERY, f"/shipments/{order_id}/{step}")).status_code == 200
    shop.wait_for(order_id, "COMPLETED")


def test_a_cancel_accepted_from_a_stale_view_of_a_shipped_parcel_is_refused_and_the_order_completes(
    shop: Shop, platform: Platform
) -> None:
    """The pivot bug, made deterministic: the order service still believes SCHEDULED (delivery's events
    for this order wait behind a parked one) while the parcel ships. The shop's cancel is accepted (202),
    delivery refuses it, and the order completes with the money kept: the refusal is on the timeline."""
    sku = shop.stock(4)
    order_id = shop.checkout([(sku, 1)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    _park_events_of(platform, "delivery", order_id)
    for step in CARRIER_STEPS:
        assert shop.http.post(shop.url(Service.DELIVERY, f"/shipments/{order_id}/{step}")).status_code == 200

    response = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert response.status_code == 202  # the order service cannot know yet; delivery will decide
    _wait_for_parked(shop, order_id, [*STEP_EVENTS, "CancellationRefused"])
    assert shop.order(order_id)["status"] == "CANCELLING"
    assert shop.payment(order_id)["refund"] is None  # no refund while delivery has not confirmed

    _release_parked(shop, order_id)
    order = shop.wait_for(order_id, "COMPLETED")
    assert order["cancellation"] == {
        "status": "refused",
        "reason": "customer",
        "detail": "cancel refused: already shipped",
    }
    assert shop.payment(order_id)["status"] == "CAPTURED" and shop.payment(order_id)["refund"] is None
    assert _events(platform, "order", order_id, "OrderCancelled") == 0
    assert shop.inventory(sku)["shipped"] == 1


def test_a_cancel_before_the_order_service_saw_the_order_is_honoured_and_never_404(
    shop: Shop, platform: Platform
) -> None:
    """Between payment's 202 and the order service consuming PaymentCompleted (here: held back behind a
    parked event), the order answers ACCEPTED and a cancel is kept until the order exists."""
    sku = shop.stock(2)
    order_id = f"early-{uuid.uuid4().hex[:12]}"
    _park_events_of(platform, "payment", order_id)
    body = {**shop.checkout_body([(sku, 1)]), "order_id": order_id}
    response = shop.http.post(
        shop.url(Service.PAYMENT, "/checkout"), json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert response.status_code == 202
    _wait_for_parked(shop, order_id, ["PaymentCompleted"])

    location = shop.http.get(response.headers["Location"])
    assert location.status_code == 200 and location.json()["status"] == "ACCEPTED"
    cancel = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert cancel.status_code == 202
    assert cancel.json() == {
        "order_id": order_id,
        "owner": SUITE_SHOP,
        "status": "ACCEPTED",
        "cancellation": "requested",
        "outcome": "applied",
    }
    assert shop.order(order_id)["cancellation"]["status"] == "requested"

    _release_parked(shop, order_id)
    order = shop.wait_for(order_id, "REFUNDED")
    assert order["cancellation"]["status"] == "confirmed" and order["cancel_reason"] == "customer"
    assert shop.inventory(sku) == {
        "sku": sku,
        "on_hand": 2,
        "reserved": 0,
        "shipped": 0,
        "stocked": 2,
        "updated_by": SUITE_SHOP,
    }


def test_a_declined_checkout_not_recorded_yet_answers_accepted_and_refuses_a_cancel(
    shop: Shop, platform: Platform
) -> None:
    order_id = f"early-{uuid.uuid4().hex[:12]}"
    _park_events_of(platform, "payment", order_id)
    body = {**shop.checkout_body([(shop.stock(1), 1)], card="tok_declined"), "order_id": order_id}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    assert (
        shop.http.post(shop.url(Service.PAYMENT, "/checkout"), json=body, headers=headers).status_code == 202
    )
    _wait_for_parked(shop, order_id, ["PaymentFailed"])

    cancel = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert cancel.status_code == 409 and cancel.json()["order_status"] == "REJECTED"
    _release_parked(shop, order_id)
    shop.wait_for(order_id, "REJECTED")


def test_unknown_order_cancel_and_status_are_404(shop: Shop) -> None:
    for method, path in (("POST", "/orders/no-such-order/cancel"), ("GET", "/orders/no-such-order")):
        response = shop.http.request(method, shop.url(Service.ORDER, path))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_delivery_silent_past_the_deadline_asks_delivery_and_refunds_only_once_it_confirms(
    shop: Shop, platform: Platform
) -> None:
    sku = shop.stock(3)
    delivery = platform.processes[Service.DELIVERY]
    delivery.stop()
    try:
        order_id = shop.checkout([(sku, 1)])["order_id"]
        shop.wait_for(order_id, "PLACED")
        order = shop.wait_for(order_id, "CANCELLING", timeout=DEADLINE_SECONDS + 30)
        assert order["cancel_reason"] == "timeout"
        time.sleep(1)
        # Delivery is down: it may have reserved and shipped, so nothing is refunded yet.
        assert shop.payment(order_id)["refund"] is None
    finally:
        delivery.start()
        delivery.wait_ready()

    # Delivery catches up: it reserves for OrderPlaced, then releases and confirms for the request.
    order = shop.wait_for(order_id, "REFUNDED")
    assert order["cancellation"]["status"] == "confirmed"
    assert shop.payment(order_id)["refund"]["status"] == "SUCCEEDED"
    shop.wait_for_shipment(order_id, "RELEASED")
    assert shop.inventory(sku)["on_hand"] == 3


def _park_events_of(platform: Platform, topic: str, order_id: str) -> None:
    """Hold back the order service's events of `order_id` on `topic`: an unreadable event of that order is
    parked, and its later events park behind it until an operator steps in (`_release_parked`)."""
    saga = _saga(order_id)  # on the topics an order is named by its saga id, and keyed by it
    poison = {
        "event_id": str(uuid.uuid4()),
        "type": "Shipped" if topic == "delivery" else "PaymentCompleted",
        "version": 99,
        "order_id": saga,
        "occurred_at": "2026-01-01T00:00:00Z",
        "producer": topic,
        "payload": {},
    }
    asyncio.run(produce_raw(platform.bootstrap, [(topic, saga.encode(), json.dumps(poison).encode())]))


def _parked(shop: Shop, order_id: str) -> list[dict[str, Any]]:
    url = shop.url(Service.ORDER, "/dead-letters")
    return list(shop.http.get(url, params={"order_id": _saga(order_id)}).json()["items"])


def _wait_for_parked(shop: Shop, order_id: str, behind: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [letter["event_type"] for letter in _parked(shop, order_id)[1:]] == behind:
            return
        time.sleep(0.1)
    raise AssertionError(f"{behind} did not park behind; parked: {_parked(shop, order_id)}")


def _release_parked(shop: Shop, order_id: str) -> None:
    """The operator discards the unreadable event and retries those parked behind it, in order."""
    first, second, *_ = _parked(shop, order_id)
    url = shop.url(Service.ORDER, "/dead-letters")
    assert shop.http.post(f"{url}/{first['id']}/discard").status_code == 200
    retried = shop.http.post(f"{url}/{second['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert {result["outcome"] for result in retried.json()["results"]} == {"applied"}


def test_same_idempotency_key_twice_charges_once_and_answers_the_same(shop: Shop, platform: Platform) -> None:
    sku = shop.stock(5)
    key = uuid.uuid4().hex
    body = shop.checkout_body([(sku, 1)])
    url = shop.url(Service.PAYMENT, "/checkout")

    first = shop.http.post(url, json=body, headers={"Idempotency-Key": key})
    second = shop.http.post(url, json=body, headers={"Idempotency-Key": key})
    different = shop.http.post(
        url, json={**body, "customer_id": "someone-else"}, headers={"Idempotency-Key": key}
    )

    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert different.status_code == 409
    order_id = first.json()["order_id"]
    assert (
        _count(platform, "payment", "SELECT count(*) FROM payments WHERE order_id = %s", _saga(order_id)) == 1
    )
    assert _events(platform, "payment", order_id, "PaymentCompleted") == 1
    # Leave the saga terminal: the invariant checker requires every accepted checkout to end.
    shop.ship_and_deliver(order_id)
    shop.wait_for(order_id, "COMPLETED")


MALFORMED = [
    pytest.param(b"", 400, "empty_body", id="empty"),
    pytest.param(b"{not json", 400, "malformed_json", id="not-json"),
    pytest.param(b"[1, 2]", 422, "validation_failed", id="not-an-object"),
    pytest.param(b'{"customer_id": "c"}', 422, "validation_failed", id="missing-fields"),
]


@pytest.mark.parametrize(("body", "status", "error"), MALFORMED)
def test_malformed_checkout_bodies_get_a_4xx_with_a_message_and_charge_nothing(
    shop: Shop, platform: Platform, body: bytes, status: int, error: str
) -> None:
    before = _count(platform, "payment", "SELECT count(*) FROM payments")
    response = shop.http.post(
        shop.url(Service.PAYMENT, "/checkout"), content=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["message"]
    assert _count(platform, "payment", "SELECT count(*) FROM payments") == before


INVALID_FIELDS = [
    pytest.param({"quantity": 0}, "lines.0.quantity", id="zero-quantity"),
    pytest.param({"unit_price_minor": -1}, "lines.0.unit_price_minor", id="negative-price"),
    pytest.param({"unit_price_minor": 12.5}, "lines.0.unit_price_minor", id="float-money"),
    pytest.param({"sku": ""}, "lines.0.sku", id="empty-sku"),
]


@pytest.mark.parametrize(("line_change", "field"), INVALID_FIELDS)
def test_invalid_fields_are_named_in_the_422(shop: Shop, line_change: dict[str, Any], field: str) -> None:
    body = shop.checkout_body([("SKU-X", 1)])
    body["lines"][0].update(line_change)
    response = shop.http.post(
        shop.url(Service.PAYMENT, "/checkout"), json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["fields"]]


def test_checkout_without_idempotency_key_is_400(shop: Shop) -> None:
    response = shop.http.post(shop.url(Service.PAYMENT, "/checkout"), json=shop.checkout_body([("SKU-X", 1)]))
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]


def test_amount_that_disagrees_with_the_lines_is_422(shop: Shop) -> None:
    body = {**shop.checkout_body([("SKU-X", 2)]), "amount_minor": 1}
    response = shop.http.post(
        shop.url(Service.PAYMENT, "/checkout"), json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert response.status_code == 422
    assert "does not equal" in response.json()["message"]


def test_every_service_publishes_an_openapi_document(shop: Shop) -> None:
    expected = {
        Service.PAYMENT: "/checkout",
        Service.ORDER: "/orders/{order_id}/cancel",
        Service.DELIVERY: "/inventory/{sku}",
    }
    for service, path in expected.items():
        document = shop.http.get(shop.url(service, "/openapi.json")).json()
        assert document["openapi"].startswith("3.")
        assert path in document["paths"]


def test_fifty_concurrent_checkouts_over_scarce_stock_keep_every_invariant(
    shop: Shop, platform: Platform
) -> None:
    skus = [shop.stock(on_hand) for on_hand in (10, 6, 3)]
    carts = [[(skus[i % 3], 1 + i % 2)] + ([(skus[(i + 1) % 3], 1)] if i % 4 == 0 else []) for i in range(50)]
    cards = ["tok_declined" if i % 10 == 7 else "tok_visa" for i in range(50)]

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda pair: shop.checkout(*pair), zip(carts, cards, strict=True)))

    order_ids = [a["order_id"] for a in answers]
    settled = [shop.wait_for(o, "SCHEDULED", "REJECTED", "REFUNDED", timeout=60) for o in order_ids]
    for order in settled:
        if order["status"] == "SCHEDULED":
            shop.ship_and_deliver(order["order_id"])
    final = {
        o: shop.wait_for(o, "COMPLETED", "REJECTED", "REFUNDED", timeout=60)["status"] for o in order_ids
    }

    assert "COMPLETED" in final.values() and "REFUNDED" in final.values() and "REJECTED" in final.values()
    for sku in skus:
        level = shop.inventory(sku)
        assert level["on_hand"] >= 0 and level["on_hand"] + level["shipped"] == level["stocked"]
    started = time.monotonic()
    report = wait_until_quiet(platform.database_urls, platform.bootstrap, timeout=60)
    report.assert_clean()
    assert time.monotonic() - started < 60
