"""A shop's webhooks on the real platform, through the raw HTTP API: every status change of its orders
POSTed to its receiver (the client's `SagaWebhooks`, a real HTTP server) — signed, numbered in order, the
same event id on every attempt — and nothing of another shop's orders; a receiver that fails is retried,
one that is disabled keeps what was pending until enabled; secrets rotate with an overlap; an event can
be sent again. Every order a test places ends terminal (the invariants of the suite hold after it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from common.config import Service
from saga_client.testing.webhooks import SagaWebhooks
from saga_client.webhooks import verify
from tests.carrier_steps import happy_statuses, happy_webhooks
from tests.e2e.conftest import Shop
from tests.keys import SHOPS, shop_keys

ORD = Service.ORDER
HAPPY = happy_webhooks()  # order.placed, order.scheduled, then one per carrier step's order status


@pytest.fixture()
def receiver() -> Iterator[SagaWebhooks]:
    running = SagaWebhooks().start()
    yield running
    running.stop()


def register(
    shop: Shop, receiver: SagaWebhooks, http: httpx.Client | None = None, **extra: Any
) -> dict[str, Any]:
    """Register the receiver for the shop whose key `http` carries (the suite's by default)."""
    response = (http or shop.http).post(shop.url(ORD, "/webhooks"), json={"url": receiver.url, **extra})
    assert response.status_code == 201, response.text
    created = dict(response.json())
    receiver.secrets.append(created["secret"])
    return created


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_every_status_change_of_a_shops_order_reaches_its_receiver_signed_and_in_sequence(
    shop: Shop, receiver: SagaWebhooks
) -> None:
    endpoint = register(shop, receiver)
    try:
        order_id = shop.checkout([(shop.stock(5), 1)])["order_id"]
        shop.ship_and_deliver(order_id)
        receiver.wait_for(order_id, "order.completed")
        events = receiver.events_of(order_id)
        assert [e.type for e in events] == HAPPY
        assert [e.order.status for e in events] == happy_statuses()
        receiver.assert_in_order(order_id)
        receiver.assert_all_verified()
        request = receiver.received()[-1]
        assert request.header("Saga-Event-Type") == "order.completed" and request.header(
            "Saga-Delivery-Attempt"
        )
        hook = shop.url(ORD, f"/webhooks/{endpoint['id']}")
        wait_until(lambda: shop.http.get(hook).json()["pending"] == 0)  # acknowledged, then settled
        shown = shop.http.get(hook).json()
        assert "secret" not in shown and shown["last_success_at"] and shown["failing_since"] is None
    finally:
        shop.http.delete(shop.url(ORD, f"/webhooks/{endpoint['id']}"))


def test_a_cancelled_order_tells_the_request_the_confirmation_the_cancel_and_the_refund(
    shop: Shop, receiver: SagaWebhooks
) -> None:
    endpoint = register(shop, receiver)
    try:
        order_id = shop.checkout([(shop.stock(5), 1)])["order_id"]
        shop.wait_for(order_id, "SCHEDULED")
        assert shop.http.post(shop.url(ORD, f"/orders/{order_id}/cancel")).status_code == 202
        receiver.wait_for(order_id, "order.refunded")
        events = receiver.events_of(order_id)
        assert [e.type for e in events] == [
            "order.placed",
            "order.scheduled",
            "order.cancellation_requested",
            "order.cancellation_confirmed",
            "order.cancelled",
            "order.refunded",
        ]
        receiver.assert_in_order(order_id)
        cancellation = events[-1].order.cancellation
        assert cancellation is not None and (cancellation.status, cancellation.reason) == (
            "confirmed",
            "customer",
        )
    finally:
        shop.http.delete(shop.url(ORD, f"/webhooks/{endpoint['id']}"))


def test_a_shop_sees_manages_and_receives_only_its_own(shop: Shop, receiver: SagaWebhooks) -> None:
    other = httpx.Client(timeout=15, headers={"Authorization": f"Bearer {shop_keys()[SHOPS[0]]}"})
    with SagaWebhooks() as other_receiver:
        mine = register(shop, receiver)
        theirs = register(shop, other_receiver, http=other)
        try:
            assert theirs["owner"] == SHOPS[0] and theirs["created_by"] == SHOPS[0]
            for call in (other.get, other.delete):
                assert call(shop.url(ORD, f"/webhooks/{mine['id']}")).status_code == 404
            for action in ("disable", "enable", "attempts", "rotate-secret", "resend"):
                method = other.get if action == "attempts" else other.post
                kwargs: dict[str, Any] = {} if action in ("disable", "enable", "attempts") else {"json": {}}
                if action == "resend":
                    kwargs = {"json": {"since": "2026-01-01T00:00:00Z"}}
                response = method(shop.url(ORD, f"/webhooks/{mine['id']}/{action}"), **kwargs)
                assert response.status_code == 404, (action, response.text)
            listed = {e["id"]: e["owner"] for e in other.get(shop.url(ORD, "/webhooks")).json()["items"]}
            assert theirs["id"] in listed and mine["id"] not in listed and set(listed.values()) == {SHOPS[0]}
            refused = other.post(
                shop.url(ORD, "/webhooks"), json={"url": receiver.url, "owner": "test-suite"}
            )
            assert refused.status_code == 403
            order_id = shop.checkout([(shop.stock(5), 1)])["order_id"]
            shop.ship_and_deliver(order_id)
            receiver.wait_for(order_id, "order.completed")
            time.sleep(0.3)
            assert other_receiver.received() == []
        finally:
            shop.http.delete(shop.url(ORD, f"/webhooks/{mine['id']}"))
            other.delete(shop.url(ORD, f"/webhooks/{theirs['id']}"))
            other.close()


def test_a_failing_receiver_is_retried_until_it_answers_and_every_attempt_is_on_record(
    shop: Shop, receiver: SagaWebhooks
) -> None:
    receiver.fail(500)
    endpoint = register(shop, receiver, event_types=["order.placed", "order.scheduled"])
    hook = shop.url(ORD, f"/webhooks/{endpoint['id']}")
    try:
        order_id = shop.checkout([(shop.stock(5), 1)])["order_id"]
        shop.wait_for(order_id, "SCHEDULED")
        wait_until(lambda: len(receiver.received()) >= 3)
        tried = receiver.received()
        assert {r.event.type for r in tried if r.event} == {"order.placed"}  # the next one waits its turn
        assert len({r.header("Saga-Event-Id") for r in tried}) == 1  # the same event, attempt after attempt
        assert [r.header("Saga-Delivery-Attempt") for r in tried[:3]] == ["1", "2", "3"]
        shown = shop.http.get(hook).json()
        assert shown["failing_since"] and shown["last_error"].startswith("HTTP 500") and shown["pending"] == 2
        receiver.answer_normally()
        receiver.wait_for(order_id, "order.scheduled")
        receiver.assert_in_order(order_id)
        # Retried until acknowledged, then never again.
        acknowledged = [r.header("Saga-Event-Id") for r in receiver.received() if r.answered == 200]
        assert len(acknowledged) == len(set(acknowledged)) == 2
        wait_until(lambda: shop.http.get(hook).json()["pending"] == 0)  # acknowledged, then settled
        assert shop.http.get(hook).json()["failing_since"] is None
        attempts = shop.http.get(f"{hook}/attempts").json()["items"]
        assert attempts[0]["delivered"] and attempts[0]["event_type"] == "order.scheduled"
        assert attempts[-1]["status_code"] == 500 and attempts[-1]["attempt"] == 1
        metrics = shop.http.get(shop.url(ORD, "/metrics")).text
        assert (
            'saga_webhook_attempts_total{outcome="failed"}' in metrics and "saga_webhook_pending " in metrics
        )
        assert endpoint["secret"] not in metrics and receiver.url not in metrics
        shop.ship_and_deliver(order_id)
    finally:
        shop.http.delete(hook)


def test_a_disabled_endpoint_is_sent_nothing_and_what_it_missed_can_be_sent_again_in_order(
    shop: Shop, receiver: SagaWebhooks
) -> None:
    endpoint = register(shop, receiver)
    hook = shop.url(ORD, f"/webhooks/{endpoint['id']}")
    try:
        order_id = shop.checkout([(shop.stock(5), 1)])["order_id"]
        receiver.wait_for(order_id, "order.scheduled")
        disabled = shop.http.post(f"{hook}/disable").json()
        assert disabled["enabled"] is False and disabled["disabled_reason"] == "disabled by request"
        shop.ship_and_deliver(order_id)
        shop.wait_for(order_id, "COMPLETED")
        time.sleep(1.0)
        assert [e.type for e in receiver.events_of(order_id)] == HAPPY[:2]
        assert shop.http.post(f"{hook}/enable").json()["enabled"] is True
        placed_at = receiver.events_of(order_id)[0].occurred_at.isoformat()
        resent = shop.http.post(f"{hook}/resend", json={"since": placed_at})
        assert resent.status_code == 202 and resent.json()["queued"] >= len(HAPPY)
        receiver.wait_for(order_id, "order.completed")
        assert [e.type for e in receiver.events_of(order_id)] == HAPPY
        again = [
            r.event.sequence for r in receiver.received() if r.event and r.event.order.order_id == order_id
        ]
        assert again[2:] == list(range(1, len(HAPPY) + 1))  # sent again from the first, in sequence
    finally:
        shop.http.delete(hook)


def test_an_event_sent_again_has_the_same_id_and_body_and_a_rotated_secret_signs_beside_the_old(
    shop: Shop, receiver: SagaWebhooks
) -> None:
    endpoint = register(shop, receiver, event_types=["order.placed"])
    hook = shop.url(ORD, f"/webhooks/{endpoint['id']}")
    try:
        order_id = shop.checkout([(shop.stock(5), 1)])["order_id"]
        placed = receiver.wait_for(order_id, "order.placed")
        rotated = shop.http.post(f"{hook}/rotate-secret", json={"overlap_seconds": 60}).json()
        assert rotated["secret"] != endpoint["secret"] and rotated["secret_rotation_ends_at"]
        assert shop.http.post(f"{hook}/resend", json={"event_id": str(placed.id)}).status_code == 202
        wait_until(lambda: len(receiver.received()) >= 2)
        first, again = receiver.received()[-2:]
        assert again.body == first.body and again.header("Saga-Event-Id") == str(placed.id)
        signature = again.header("Saga-Signature") or ""
        assert signature.count("v1=") == 2
        for secret in (rotated["secret"], endpoint["secret"]):
            assert verify(again.body, signature, [secret], now=again.arrived_at).id == placed.id
        unknown = shop.http.post(f"{hook}/resend", json={"event_id": "00000000-0000-0000-0000-000000000000"})
        assert unknown.status_code == 409 and unknown.json()["error"] == "unknown_event"
        shop.ship_and_deliver(order_id)
    finally:
        shop.http.delete(hook)


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/x"},
        {"url": "https://user:secret@example.com/x"},
        {"url": "https://example.com/x#fragment"},
        {"url": "http://127.0.0.1:1/x", "event_types": []},
        {"url": "http://127.0.0.1:1/x", "event_types": ["order.exploded"]},
        {"url": "http://127.0.0.1:1/x", "surprise": 1},
    ],
)
def test_an_endpoint_that_cannot_receive_is_refused_with_the_reason_and_nothing_is_registered(
    shop: Shop, body: dict[str, Any]
) -> None:
    before = shop.http.get(shop.url(ORD, "/webhooks")).json()["items"]
    response = shop.http.post(shop.url(ORD, "/webhooks"), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["message"]
    assert shop.http.get(shop.url(ORD, "/webhooks")).json()["items"] == before
