"""A shop's webhooks on the real platform: registered through the API, every status change of its
orders POSTed to its receiver — signed, numbered in order, the same event id on every attempt — and
nothing of another shop's orders; a receiver that fails is retried, one that is disabled keeps its
events until enabled; secrets rotate with an overlap; an event can be sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from common.config import Service
from tests.e2e.conftest import Platform, Shop
from tests.keys import SHOPS, shop_keys

ORD = Service.ORDER
HAPPY = ["order.placed", "order.scheduled", "order.shipped", "order.completed"]


class Receiver:
    """A shop's receiver on a free local port: records every request, answers `status` (200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append({"body": body, "headers": dict(self.headers)})
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, order_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            bodies = [json.loads(r["body"]) for r in self.requests]
        return [b for b in bodies if order_id is None or b["order"]["order_id"] == order_id]

    def wait_for(self, order_id: str, event_type: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events(order_id)
            if any(e["type"] == event_type for e in events):
                return events
            time.sleep(0.05)
        raise AssertionError(f"{event_type} of {order_id} never arrived; got {self.events(order_id)}")


def verifies(request: dict[str, Any], secret: str) -> bool:
    header = request["headers"]["Saga-Signature"]
    parts = [p.split("=", 1) for p in header.split(",")]
    timestamp = next(v for k, v in parts if k == "t")
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256
    ).hexdigest()
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def register(shop: Shop, url: str, http: httpx.Client | None = None, **extra: Any) -> dict[str, Any]:
    response = (http or shop.http).post(shop.url(ORD, "/webhooks"), json={"url": url, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_every_status_change_of_a_shops_order_reaches_its_receiver_signed_and_in_sequence(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint = register(shop, receiver.url)
    try:
        sku = shop.stock(5)
        order_id = shop.checkout([(sku, 1)])["order_id"]
        shop.ship_and_deliver(order_id)
        events = receiver.wait_for(order_id, "order.completed")
        assert [e["type"] for e in events] == HAPPY
        assert [e["sequence"] for e in events] == [1, 2, 3, 4]
        assert [e["order"]["status"] for e in events] == ["PLACED", "SCHEDULED", "SHIPPED", "COMPLETED"]
        assert all(verifies(r, endpoint["secret"]) for r in receiver.requests)
        shown = shop.http.get(shop.url(ORD, f"/webhooks/{endpoint['id']}")).json()
        assert "secret" not in shown and shown["pending"] == 0 and shown["last_success_at"]
    finally:
        shop.http.delete(shop.url(ORD, f"/webhooks/{endpoint['id']}"))


def test_a_cancelled_order_tells_the_request_the_confirmation_the_cancel_and_the_refund(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint = register(shop, receiver.url)
    try:
        sku = shop.stock(5)
        order_id = shop.checkout([(sku, 1)])["order_id"]
        shop.wait_for(order_id, "SCHEDULED")
        assert shop.http.post(shop.url(ORD, f"/orders/{order_id}/cancel")).status_code == 202
        events = receiver.wait_for(order_id, "order.refunded")
        assert [e["type"] for e in events] == [
            "order.placed",
            "order.scheduled",
            "order.cancellation_requested",
            "order.cancellation_confirmed",
            "order.cancelled",
            "order.refunded",
        ]
        assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5, 6]
        assert events[-1]["order"]["cancellation"] == {"status": "confirmed", "reason": "customer"}
    finally:
        shop.http.delete(shop.url(ORD, f"/webhooks/{endpoint['id']}"))


def test_a_shop_sees_manages_and_receives_only_its_own(
    shop: Shop, receiver: Receiver, platform: Platform
) -> None:
    other = httpx.Client(timeout=15, headers={"Authorization": f"Bearer {shop_keys()[SHOPS[0]]}"})
    other_receiver = Receiver()
    mine = register(shop, receiver.url)
    theirs = register(shop, other_receiver.url, http=other)
    try:
        assert theirs["owner"] == SHOPS[0]
        assert other.get(shop.url(ORD, f"/webhooks/{mine['id']}")).status_code == 404
        assert other.post(shop.url(ORD, f"/webhooks/{mine['id']}/disable")).status_code == 404
        assert other.delete(shop.url(ORD, f"/webhooks/{mine['id']}")).status_code == 404
        listed = {e["id"]: e["owner"] for e in other.get(shop.url(ORD, "/webhooks")).json()["items"]}
        assert theirs["id"] in listed and mine["id"] not in listed and set(listed.values()) == {SHOPS[0]}
        refused = other.post(shop.url(ORD, "/webhooks"), json={"url": receiver.url, "owner": "test-suite"})
        assert refused.status_code == 403
        sku = shop.stock(5)
        order_id = shop.checkout([(sku, 1)])["order_id"]
        receiver.wait_for(order_id, "order.scheduled")
        time.sleep(0.5)
        assert other_receiver.events() == []
    finally:
        shop.http.delete(shop.url(ORD, f"/webhooks/{mine['id']}"))
        other.delete(shop.url(ORD, f"/webhooks/{theirs['id']}"))
        other_receiver.server.shutdown()
        other.close()


def test_a_failing_receiver_is_retried_until_it_answers_and_every_attempt_is_on_record(
    shop: Shop, receiver: Receiver
) -> None:
    receiver.status = 500
    endpoint = register(shop, receiver.url, event_types=["order.placed", "order.scheduled"])
    try:
        sku = shop.stock(5)
        order_id = shop.checkout([(sku, 1)])["order_id"]
        shop.wait_for(order_id, "SCHEDULED")
        deadline = time.monotonic() + 20
        while len(receiver.events(order_id)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        failed = receiver.events(order_id)
        assert len(failed) >= 3 and {e["type"] for e in failed} == {"order.placed"}  # the next one waits
        assert len({e["id"] for e in failed}) == 1  # the same event, attempt after attempt
        shown = shop.http.get(shop.url(ORD, f"/webhooks/{endpoint['id']}")).json()
        assert shown["failing_since"] and shown["last_error"].startswith("HTTP 500") and shown["pending"] == 2
        receiver.status = 200
        events = receiver.wait_for(order_id, "order.scheduled")
        distinct = list(dict.fromkeys((e["id"], e["type"], e["sequence"]) for e in events))
        assert [(t, s) for _, t, s in distinct] == [("order.placed", 1), ("order.scheduled", 2)]
        attempts = shop.http.get(shop.url(ORD, f"/webhooks/{endpoint['id']}/attempts")).json()["items"]
        assert attempts[0]["delivered"] and attempts[0]["event_type"] == "order.scheduled"
        assert [a["status_code"] for a in attempts if not a["delivered"]][:1] == [500]
        assert [a["attempt"] for a in attempts if a["event_type"] == "order.placed"][-1] == 1
        healed = shop.http.get(shop.url(ORD, f"/webhooks/{endpoint['id']}")).json()
        assert healed["failing_since"] is None and healed["pending"] == 0
    finally:
        shop.http.delete(shop.url(ORD, f"/webhooks/{endpoint['id']}"))


def test_a_disabled_endpoint_keeps_its_events_and_sends_them_in_order_once_enabled(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint = register(shop, receiver.url)
    hook = shop.url(ORD, f"/webhooks/{endpoint['id']}")
    try:
        sku = shop.stock(5)
        order_id = shop.checkout([(sku, 1)])["order_id"]
        receiver.wait_for(order_id, "order.scheduled")
        disabled = shop.http.post(f"{hook}/disable").json()
        assert disabled["enabled"] is False and disabled["disabled_reason"] == "disabled by request"
        shop.ship_and_deliver(order_id)
        shop.wait_for(order_id, "COMPLETED")
        time.sleep(1.0)
        assert [e["type"] for e in receiver.events(order_id)] == HAPPY[:2]
        assert shop.http.post(f"{hook}/enable").json()["enabled"] is True
        # Events that happened while it was disabled were not queued for it: resend them by time.
        placed_at = receiver.events(order_id)[0]["occurred_at"]
        resent = shop.http.post(f"{hook}/resend", json={"since": placed_at})
        assert resent.status_code == 202 and resent.json()["queued"] >= 4
        events = receiver.wait_for(order_id, "order.completed")
        assert [(e["type"], e["sequence"]) for e in events[2:]] == [(t, n + 1) for n, t in enumerate(HAPPY)]
    finally:
        shop.http.delete(hook)


def test_an_event_sent_again_has_the_same_id_and_a_rotated_secret_signs_beside_the_old(
    shop: Shop, receiver: Receiver
) -> None:
    endpoint = register(shop, receiver.url, event_types=["order.placed"])
    hook = shop.url(ORD, f"/webhooks/{endpoint['id']}")
    try:
        sku = shop.stock(5)
        order_id = shop.checkout([(sku, 1)])["order_id"]
        [placed] = receiver.wait_for(order_id, "order.placed")
        rotated = shop.http.post(f"{hook}/rotate-secret", json={"overlap_seconds": 60}).json()
        assert rotated["secret"] != endpoint["secret"] and rotated["secret_rotation_ends_at"]
        assert shop.http.post(f"{hook}/resend", json={"event_id": placed["id"]}).status_code == 202
        deadline = time.monotonic() + 10
        while len(receiver.events(order_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first, again = receiver.requests[-2:]
        assert json.loads(again["body"]) == placed
        assert verifies(again, rotated["secret"]) and verifies(again, endpoint["secret"])
        assert (
            again["headers"]["Saga-Signature"].count("v1=") == 2
            and first["headers"]["Saga-Event-Id"] == placed["id"]
        )
        unknown = shop.http.post(f"{hook}/resend", json={"event_id": "00000000-0000-0000-0000-000000000000"})
        assert unknown.status_code == 409 and unknown.json()["error"] == "unknown_event"
    finally:
        shop.http.delete(hook)


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/x"},
        {"url": "https://user:secret@example.com/x"},
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
