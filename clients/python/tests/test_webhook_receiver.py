"""The `saga_webhooks` receiver on its own: real HTTP requests signed with `webhooks.sign`, sent by httpx."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from saga_client import ClientConfig, RetryPolicy, SagaClient, webhooks
from saga_client.testing import SagaWebhooks

SECRET = "whsec_receiver_test"
ENDPOINT_ID = "7c0b0d7e-1111-4222-8333-444455556666"


def event(
    order_id: str, sequence: int, type: str = "order.placed", *, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": type,
        "version": 1,
        "sequence": sequence,
        "occurred_at": "2026-12-06T10:00:00+00:00",
        "order": {
            "order_id": order_id,
            "owner": "acme",
            "status": "PLACED",
            "payment_id": "6b1f8a1e-0c55-4a8e-9f5c-7b1d2f3e4a5b",
            "customer_id": "c-1",
            "amount": {"amount_minor": 1250, "currency": "EUR"},
            "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 1250}],
            "cancel_reason": None,
            "cancellation": None,
        },
    }


def post(
    receiver: SagaWebhooks,
    body: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    timeout: float = 5.0,
    attempt: int = 1,
) -> httpx.Response:
    """A request as the platform sends it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "Saga-Signature": webhooks.sign(raw, secret, timestamp=timestamp),
        "Saga-Delivery-Attempt": str(attempt),
    }
    if isinstance(body, dict):
        headers |= {"Saga-Event-Id": body["id"], "Saga-Event-Type": body["type"]}
    return httpx.post(receiver.url, content=raw, headers=headers, timeout=timeout)


@pytest.fixture()
def receiver() -> Iterator[SagaWebhooks]:
    with SagaWebhooks([SECRET]) as listening:
        yield listening


def test_a_request_is_recorded_as_it_came_verified_and_answered_200(receiver: SagaWebhooks) -> None:
    sent = event("o-1", 1)
    before = time.time()

    answer = post(receiver, sent, attempt=2)

    assert answer.status_code == 200
    [got] = receiver.received()
    assert receiver.url.startswith("http://127.0.0.1:")
    assert got.path == "/saga-hooks"
    assert json.loads(got.body) == sent
    assert got.header("saga-event-id") == sent["id"]
    assert got.attempt == 2
    assert before <= got.arrived_at <= time.time()
    assert (got.answered, got.held_for, got.error) == (200, 0.0, None)
    assert got.event is not None and str(got.event.id) == sent["id"]


def test_a_request_signed_with_another_secret_is_answered_200_but_recorded_as_not_verified(
    receiver: SagaWebhooks,
) -> None:
    assert post(receiver, event("o-1", 1), secret="whsec_someone_elses").status_code == 200

    [got] = receiver.received()
    assert got.event is None and got.error is not None
    assert got.order_id == "o-1"
    assert receiver.events_of("o-1") == []
    with pytest.raises(
        AssertionError, match=r"1 of 1 webhook requests did not verify:\n- #0 .*order o-1.*no v1"
    ):
        receiver.assert_all_verified()


def test_a_request_signed_longer_ago_than_the_tolerance_is_not_verified(receiver: SagaWebhooks) -> None:
    post(receiver, event("o-1", 1), timestamp=int(time.time()) - 600)

    with pytest.raises(AssertionError, match="old"):
        receiver.assert_all_verified()


def test_a_chunked_body_is_read_whole(receiver: SagaWebhooks) -> None:
    raw = json.dumps(event("o-1", 1)).encode()
    headers = {"Saga-Signature": webhooks.sign(raw, SECRET)}

    answer = httpx.post(receiver.url, content=iter([raw[:10], raw[10:]]), headers=headers)

    assert answer.status_code == 200
    assert receiver.received()[0].body == raw
    receiver.assert_all_verified()


def test_told_to_fail_it_answers_that_status_until_told_to_answer_normally(receiver: SagaWebhooks) -> None:
    receiver.fail(status=503)
    failed = [post(receiver, event("o-1", 1)).status_code for _ in range(2)]
    receiver.answer_normally()

    assert failed == [503, 503]
    assert post(receiver, event("o-1", 2)).status_code == 200
    assert [r.answered for r in receiver.received()] == [503, 503, 200]


def test_failing_for_some_seconds_answers_normally_after_them(receiver: SagaWebhooks) -> None:
    receiver.fail(status=500, for_seconds=1.0)

    assert post(receiver, event("o-1", 1)).status_code == 500
    time.sleep(1.05)
    assert post(receiver, event("o-1", 2)).status_code == 200


def test_hanging_holds_each_answer_past_the_senders_timeout_until_told_to_answer_normally(
    receiver: SagaWebhooks,
) -> None:
    receiver.hang(30)

    with pytest.raises(httpx.ReadTimeout):
        post(receiver, event("o-1", 1), timeout=0.3)
    began = time.monotonic()
    receiver.answer_normally()  # lets the held answer go: nothing waits the 30 s
    answer = post(receiver, event("o-1", 2))

    assert answer.status_code == 200 and time.monotonic() - began < 2
    held, normal = receiver.received()
    assert (held.held_for, normal.held_for) == (30, 0.0)
    assert held.event is not None  # the platform gave up, but the request arrived and verified


def test_a_duplicate_counts_once_at_its_first_arrival_and_is_reported(receiver: SagaWebhooks) -> None:
    first, second = event("o-1", 1), event("o-1", 2, "order.scheduled")
    for body in (first, second, first):
        post(receiver, body)

    assert [e.sequence for e in receiver.events_of("o-1")] == [1, 2]
    duplicates = receiver.duplicates()
    assert [str(event_id) for event_id in duplicates] == [first["id"]]
    assert [r.index for r in duplicates[uuid.UUID(first["id"])]] == [0, 2]
    receiver.assert_in_order("o-1")  # a late duplicate is no disorder


def test_events_of_an_order_leave_other_orders_out(receiver: SagaWebhooks) -> None:
    for body in (event("o-1", 1), event("o-2", 1), event("o-1", 2, "order.scheduled")):
        post(receiver, body)

    assert [(e.order.order_id, e.sequence) for e in receiver.events_of("o-1")] == [("o-1", 1), ("o-1", 2)]
    assert len(receiver.events()) == 3


def test_events_in_order_pass(receiver: SagaWebhooks) -> None:
    for sequence, type in enumerate(["order.placed", "order.scheduled", "order.shipped"], start=1):
        post(receiver, event("o-1", sequence, type))

    receiver.assert_in_order("o-1")
    receiver.assert_all_verified()


def test_a_gap_in_the_sequence_fails_assert_in_order(receiver: SagaWebhooks) -> None:
    post(receiver, event("o-1", 1))
    post(receiver, event("o-1", 3, "order.shipped"))

    with pytest.raises(AssertionError, match=r"sequence \[1, 3\], not \[1, 2\]"):
        receiver.assert_in_order("o-1")


def test_an_event_arriving_before_the_one_it_follows_fails_assert_in_order(receiver: SagaWebhooks) -> None:
    post(receiver, event("o-1", 2, "order.scheduled"))
    post(receiver, event("o-1", 1))

    with pytest.raises(AssertionError, match=r"sequence \[2, 1\], not \[1, 2\]"):
        receiver.assert_in_order("o-1")


def test_no_event_of_the_order_fails_assert_in_order(receiver: SagaWebhooks) -> None:
    post(receiver, event("o-2", 1))

    with pytest.raises(AssertionError, match="no verified event of order o-1"):
        receiver.assert_in_order("o-1")


def test_wait_for_returns_the_event_once_it_arrives(receiver: SagaWebhooks) -> None:
    later = threading.Timer(0.2, post, (receiver, event("o-1", 2, "order.completed")))
    post(receiver, event("o-1", 1))
    later.start()

    found = receiver.wait_for("o-1", "order.completed", timeout=10)

    later.join()
    assert found.sequence == 2


def test_wait_for_gives_up_saying_what_arrived_for_the_order(receiver: SagaWebhooks) -> None:
    post(receiver, event("o-1", 1))
    post(receiver, event("o-1", 2, "order.scheduled"), secret="whsec_someone_elses")

    with pytest.raises(AssertionError) as raised:
        receiver.wait_for("o-1", "order.completed", timeout=0.2)

    said = str(raised.value)
    assert "no verified order.completed of order o-1 after 0.2s" in said
    assert "its requests: [order.placed#1]" in said
    assert "1 did not verify" in said


class OrderService:
    """A mock order service answering the receiver's create and delete (through a real SagaClient)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "DELETE":
            return httpx.Response(200, json={"id": ENDPOINT_ID, "deleted": True})
        sent = json.loads(request.content)
        return httpx.Response(201, json={**endpoint(sent), "secret": SECRET})

    def client(self) -> SagaClient:
        config = ClientConfig(
            order_url="http://order.test", api_key="shop-key", retry=RetryPolicy(attempts=1)
        )
        return SagaClient(config, transport=httpx.MockTransport(self))


def endpoint(sent: dict[str, Any]) -> dict[str, Any]:
    stamp = "2026-12-06T10:00:00+00:00"
    return {
        "id": ENDPOINT_ID,
        "owner": "acme",
        "url": sent["url"],
        "description": sent.get("description"),
        "event_types": sent.get("event_types") or [t.value for t in webhooks.WebhookEventType],
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


def test_subscribing_registers_its_url_for_every_type_and_closing_deletes_the_endpoint() -> None:
    service = OrderService()
    with SagaWebhooks() as receiver:
        receiver.subscribe(service.client())
        post(receiver, event("o-1", 1))
        receiver.assert_all_verified()  # with the secret the subscription answered
        url = receiver.url

    create, delete = service.requests
    assert json.loads(create.content) == {"url": url, "description": "saga_webhooks (pytest)"}
    assert (delete.method, delete.url.path) == ("DELETE", f"/webhooks/{ENDPOINT_ID}")
    assert receiver.endpoint is None


def test_a_request_that_arrived_before_the_secret_was_known_verifies_once_it_is() -> None:
    with SagaWebhooks() as receiver:
        post(receiver, event("o-1", 1))  # the platform was faster than the answer to the subscription
        assert receiver.events_of("o-1") == []
        receiver.secrets.append(SECRET)

        assert [e.sequence for e in receiver.events_of("o-1")] == [1]


def test_subscribed_to_some_types_gaps_are_expected_but_disorder_is_not() -> None:
    with SagaWebhooks() as receiver:
        receiver.subscribe(OrderService().client(), event_types=["order.placed", "order.completed"])
        post(receiver, event("o-1", 1))
        post(receiver, event("o-1", 5, "order.completed"))
        receiver.assert_in_order("o-1")

        post(receiver, event("o-2", 5, "order.completed"))
        post(receiver, event("o-2", 1))
        with pytest.raises(AssertionError, match=r"out of order: \[5, 1\]"):
            receiver.assert_in_order("o-2")
