"""The consistency checker on canned answers: the violations a correct platform never shows."""

from __future__ import annotations

from typing import Any

import httpx

from saga_client import ClientConfig, SagaClient
from saga_client.checker import check
from saga_client.models import CARRIER_STEPS

T0 = "2026-01-01T00:00:00Z"
PAYMENT_ID = "6b1f8a1e-0c55-4a8e-9f5c-7b1d2f3e4a5b"
LINES = [{"sku": "SKU-1", "quantity": 2, "unit_price_minor": 500}]
EUR = {"amount_minor": 1000, "currency": "EUR"}


def order(status: str, *, cancellation: dict[str, Any] | None = None, received: int = 0) -> dict[str, Any]:
    timeline = [
        {
            "at": T0,
            "kind": "received",
            "event_type": "PaymentRefunded",
            "event_id": None,
            "status_before": "CANCELLED",
            "status_after": "REFUNDED",
            "detail": None,
        }
    ] * received
    return {
        "order_id": "o-1",
        "owner": "acme",
        "status": status,
        "payment_id": PAYMENT_ID,
        "customer_id": "c-1",
        "amount": EUR,
        "lines": LINES,
        "cancel_reason": None,
        "cancellation": cancellation,
        "waiting_for": None,
        "deadline_at": None,
        "created_at": T0,
        "updated_at": T0,
        "timeline": timeline,
    }


def payment(status: str, refund: str | None = None) -> dict[str, Any]:
    return {
        "payment_id": PAYMENT_ID,
        "order_id": "o-1",
        "owner": "acme",
        "customer_id": "c-1",
        "status": status,
        "amount": EUR,
        "lines": LINES,
        "failure_reason": None,
        "gateway_reference": "ref",
        "created_at": T0,
        "updated_at": T0,
        "refund": None
        if refund is None
        else {
            "refund_id": PAYMENT_ID,
            "status": refund,
            "reason": "customer",
            "amount": EUR,
            "attempts": 1,
            "last_error": None,
            "retried_by": None,
            "updated_at": T0,
        },
    }


def shipment(status: str) -> dict[str, Any]:
    return {
        "order_id": "o-1",
        "owner": "acme",
        "status": status,
        "lines": LINES,
        "short": None,
        "tracking_code": None,
        **{step.made_by: None for step in CARRIER_STEPS},
        "created_at": T0,
        "updated_at": T0,
    }


def platform(
    order_answer: dict[str, Any],
    payment_answer: dict[str, Any],
    shipment_answer: dict[str, Any] | None,
    **stock: int,
) -> SagaClient:
    """A client of a fake platform holding one order, its payment and shipment, and SKU-1's stock."""
    level = {
        "sku": "SKU-1",
        "on_hand": 8,
        "reserved": 0,
        "shipped": 2,
        "stocked": 10,
        "updated_by": "ops",
        **stock,
    }

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/orders/o-1":
            return httpx.Response(200, json=order_answer)
        if path == "/payments/o-1":
            return httpx.Response(200, json=payment_answer)
        if path == "/shipments/o-1":
            if shipment_answer is None:
                return httpx.Response(404, json={"error": "not_found", "message": "no shipment"})
            return httpx.Response(200, json=shipment_answer)
        if path == "/inventory/SKU-1":
            return httpx.Response(200, json=level)
        if path == "/dead-letters":
            assert request.url.params["order_id"] == "acme:o-1"  # the operator names the shop's order
            return httpx.Response(200, json={"items": [], "limit": 100, "offset": 0})
        return httpx.Response(404, json={"error": "not_found", "message": path})

    return SagaClient(ClientConfig(), transport=httpx.MockTransport(answer))


def test_a_completed_saga_with_its_parcel_delivered_is_consistent() -> None:
    saga = platform(order("COMPLETED"), payment("CAPTURED"), shipment("DELIVERED"))

    assert check(saga, ["o-1"], ["SKU-1"]).violations == []


def test_a_parcel_that_shipped_and_was_refunded_is_reported() -> None:
    saga = platform(order("REFUNDED"), payment("REFUNDED", "SUCCEEDED"), shipment("DELIVERED"))

    violations = check(saga, ["o-1"], ["SKU-1"]).violations

    assert any("shipped and refunded" in violation for violation in violations)


def test_a_refund_received_twice_is_reported() -> None:
    saga = platform(order("REFUNDED", received=2), payment("REFUNDED", "SUCCEEDED"), shipment("RELEASED"))

    violations = check(saga, ["o-1"], ["SKU-1"], exclusive_skus=False).violations

    assert violations == ["order o-1: refunded 2 times"]


def test_money_kept_for_an_order_that_did_not_complete_is_reported() -> None:
    saga = platform(order("REJECTED"), payment("CAPTURED"), None)

    violations = check(saga, ["o-1"]).violations

    assert any("charged 1000 - refunded 0 != completed 0 + refund failed 0" in v for v in violations)


def test_a_confirmed_cancel_whose_parcel_is_still_reserved_is_reported() -> None:
    confirmed = {"status": "confirmed", "reason": "customer", "detail": "confirmed"}
    saga = platform(order("CANCELLING", cancellation=confirmed), payment("CAPTURED"), shipment("SCHEDULED"))

    violations = check(saga, ["o-1"], ["SKU-1"], exclusive_skus=False).violations

    assert any("CANCELLING (cancel confirmed: True) but its parcel is SCHEDULED" in v for v in violations)


def test_stock_that_does_not_add_up_or_disagrees_with_the_shipments_is_reported() -> None:
    saga = platform(order("COMPLETED"), payment("CAPTURED"), shipment("DELIVERED"), shipped=3)

    violations = check(saga, ["o-1"], ["SKU-1"]).violations

    assert "stock of SKU-1: 8 + 0 + 3 != stocked 10" in violations
    assert "stock of SKU-1: reserved 0, shipped 3; the shipments hold 0 reserved, 2 shipped" in violations


def test_a_checkout_payment_never_accepted_is_not_checked() -> None:
    saga = platform(order("COMPLETED"), payment("CAPTURED"), shipment("DELIVERED"))

    assert check(saga, ["never-sent"]).statuses == {}
