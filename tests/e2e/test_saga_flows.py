"""The saga end to end over HTTP: real services, real Kafka, real PostgreSQL."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from common.config import Service
from tests.e2e.conftest import DEADLINE_SECONDS, Platform, Shop
from tests.invariants import wait_until_quiet


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
        order_id,
        event_type,
    )


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
    assert _count(platform, "payment", "SELECT count(*) FROM payments WHERE order_id = %s", order_id) == 1
    assert shop.inventory(sku) == {"sku": sku, "on_hand": 7, "reserved": 0, "shipped": 3, "stocked": 10}


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
    assert _count(platform, "payment", "SELECT count(*) FROM refunds WHERE order_id = %s", order_id) == 1
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


def test_customer_cancel_before_shipment_releases_stock_and_refunds_once(
    shop: Shop, platform: Platform
) -> None:
    sku = shop.stock(4)
    order_id = shop.checkout([(sku, 2)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    assert shop.inventory(sku)["reserved"] == 2

    response = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert response.status_code == 202, response.text
    again = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert again.status_code == 202

    order = shop.wait_for(order_id, "REFUNDED")
    assert order["cancel_reason"] == "customer"
    shop.wait_for_shipment(order_id, "RELEASED")
    assert shop.inventory(sku) == {"sku": sku, "on_hand": 4, "reserved": 0, "shipped": 0, "stocked": 4}
    assert _count(platform, "payment", "SELECT count(*) FROM refunds WHERE order_id = %s", order_id) == 1
    assert _events(platform, "order", order_id, "OrderCancelled") == 1


def test_customer_cancel_after_shipment_is_409_and_changes_nothing(shop: Shop, platform: Platform) -> None:
    sku = shop.stock(4)
    order_id = shop.checkout([(sku, 1)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    assert shop.http.post(shop.url(Service.DELIVERY, f"/shipments/{order_id}/ship")).status_code == 200
    shop.wait_for(order_id, "SHIPPED")

    response = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))

    assert response.status_code == 409
    assert "ship" in response.json()["message"].lower()
    assert shop.order(order_id)["status"] == "SHIPPED"
    assert _events(platform, "order", order_id, "OrderCancelled") == 0
    assert shop.payment(order_id)["refund"] is None
    assert shop.http.post(shop.url(Service.DELIVERY, f"/shipments/{order_id}/deliver")).status_code == 200
    shop.wait_for(order_id, "COMPLETED")


def test_unknown_order_cancel_is_404(shop: Shop) -> None:
    response = shop.http.post(shop.url(Service.ORDER, "/orders/no-such-order/cancel"))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_delivery_silent_past_the_deadline_cancels_with_timeout_and_refunds(
    shop: Shop, platform: Platform
) -> None:
    sku = shop.stock(3)
    delivery = platform.processes[Service.DELIVERY]
    delivery.stop()
    try:
        order_id = shop.checkout([(sku, 1)])["order_id"]
        shop.wait_for(order_id, "PLACED")
        order = shop.wait_for(order_id, "REFUNDED", timeout=DEADLINE_SECONDS + 30)
    finally:
        delivery.start()
        delivery.wait_ready()

    assert order["cancel_reason"] == "timeout"
    assert shop.payment(order_id)["refund"]["status"] == "SUCCEEDED"
    # Delivery catches up: it reserves for OrderPlaced, then releases for OrderCancelled.
    shop.wait_for_shipment(order_id, "RELEASED")
    assert shop.inventory(sku)["on_hand"] == 3
    assert shop.order(order_id)["status"] == "REFUNDED"


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
    assert _count(platform, "payment", "SELECT count(*) FROM payments WHERE order_id = %s", order_id) == 1
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
