"""The `saga_webhooks` fixture in whole `pytester` sessions, against a stand-in of the order service's
`/webhooks` that sends signed events to the endpoint it is given (no Kafka, no PostgreSQL)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from saga_client import webhooks
from saga_client.config import KEY_VARIABLES, Role

SECRET = "whsec_fake_order_service"
ENDPOINT_ID = "7c0b0d7e-1111-4222-8333-444455556666"
TYPES = ["order.placed", "order.scheduled", "order.shipped", "order.completed"]


class FakeOrderService:
    """Ready on `/readyz` (for all three services' URLs); `POST /webhooks` answers an endpoint and its
    secret, then POSTs the events of order `o-fake` to it, signed; `DELETE /webhooks/{id}` answers
    `delete_status`. Records what it was asked."""

    def __init__(self, delete_status: int = 200) -> None:
        self.delete_status = delete_status
        self.asked: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
        self.sent: list[threading.Thread] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._json(200, {"ready": True, "checks": {}, "authentication": "on"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.asked.append(("POST", self.path, body, self.headers.get("Authorization")))
                stamp = "2026-12-06T10:00:00+00:00"
                endpoint = {
                    "id": ENDPOINT_ID,
                    "owner": "demo-shop",
                    "url": body["url"],
                    "description": body.get("description"),
                    "event_types": body.get("event_types") or [t.value for t in webhooks.WebhookEventType],
                    "enabled": True,
                    "disabled_reason": None,
                    "created_by": "test-shop",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "pending": 0,
                    "failing_since": None,
                    "last_success_at": None,
                    "last_failure_at": None,
                    "last_error": None,
                    "secret_rotation_ends_at": None,
                }
                self._json(201, {**endpoint, "secret": SECRET})
                sender = threading.Thread(target=service.send_events, args=(body["url"],))
                service.sent.append(sender)
                sender.start()

            def do_DELETE(self) -> None:
                service.asked.append(("DELETE", self.path, None, self.headers.get("Authorization")))
                if service.delete_status == 200:
                    self._json(200, {"id": self.path.rsplit("/", 1)[-1], "deleted": True})
                else:
                    self._json(service.delete_status, {"error": "internal", "message": "it broke"})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def send_events(self, url: str) -> None:
        for sequence, type in enumerate(TYPES, start=1):
            body = json.dumps(event(sequence, type)).encode()
            headers = {"Saga-Signature": webhooks.sign(body, SECRET), "Saga-Delivery-Attempt": "1"}
            httpx.post(url, content=body, headers=headers, timeout=5)

    def __enter__(self) -> FakeOrderService:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for sender in self.sent:
            sender.join(5)
        self.server.shutdown()
        self.server.server_close()


def event(sequence: int, type: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type,
        "version": 1,
        "sequence": sequence,
        "occurred_at": "2026-12-06T10:00:00+00:00",
        "order": {
            "order_id": "o-fake",
            "owner": "demo-shop",
            "status": type.removeprefix("order.").upper(),
            "payment_id": "6b1f8a1e-0c55-4a8e-9f5c-7b1d2f3e4a5b",
            "customer_id": "c-1",
            "amount": {"amount_minor": 1250, "currency": "EUR"},
            "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 1250}],
            "cancel_reason": None,
            "cancellation": None,
        },
    }


SHOP_TEST = """
def test_the_order_events_arrive_in_order_and_verified(saga_webhooks):
    saga_webhooks.wait_for("o-fake", "order.completed", timeout=10)
    saga_webhooks.assert_in_order("o-fake")
    saga_webhooks.assert_all_verified()
    assert [e.type for e in saga_webhooks.events_of("o-fake")] == [
        "order.placed", "order.scheduled", "order.shipped", "order.completed"
    ]
"""


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[FakeOrderService]:
    with FakeOrderService(**getattr(request, "param", {})) as service:
        for name in ("PAYMENT", "ORDER", "DELIVERY"):
            monkeypatch.setenv(f"SAGA_{name}_URL", service.url)
        for variable in KEY_VARIABLES.values():
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv(KEY_VARIABLES[Role.SHOP], "saga_shop-key")
        yield service


def test_the_fixture_subscribes_a_receiver_for_every_type_with_the_shop_key_and_deletes_it_after(
    pytester: pytest.Pytester, fake: FakeOrderService
) -> None:
    pytester.makepyfile(test_shop=SHOP_TEST)

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(passed=1)
    (method, path, body, key), (deleted, deleted_path, _, _) = fake.asked
    assert (method, path, key) == ("POST", "/webhooks", "Bearer saga_shop-key")
    assert body is not None and set(body) == {"url", "description"}  # no event_types: every type
    assert body["url"].startswith("http://127.0.0.1:")
    assert (deleted, deleted_path) == ("DELETE", f"/webhooks/{ENDPOINT_ID}")


@pytest.mark.parametrize("fake", [{"delete_status": 500}], indirect=True)
def test_an_endpoint_the_fixture_could_not_delete_is_a_warning_naming_it_not_a_failure(
    pytester: pytest.Pytester, fake: FakeOrderService
) -> None:
    pytester.makepyfile(test_shop=SHOP_TEST)

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([f"*saga_webhooks: could not delete the endpoint {ENDPOINT_ID}*"])
