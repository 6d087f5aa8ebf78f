"""The client's `/webhooks` calls without a platform: requests, keys, answers and retries, over httpx's mock
transport and as plans driven by hand."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from saga_client import (
    AsyncSagaClient,
    ClientConfig,
    NotFound,
    RetryPolicy,
    SagaClient,
    Unavailable,
    WebhookEndpoint,
)
from saga_client.calls import Calls
from saga_client.config import Role
from saga_client.plans import HttpRequest, Reply, Sent

NO_WAIT = RetryPolicy(attempts=3, initial_delay=0.0, max_delay=0.0, jitter=0.0)
CONFIG = ClientConfig(
    payment_url="http://pay.test",
    order_url="http://order.test",
    delivery_url="http://delivery.test",
    retry=NO_WAIT,
    api_key="shop-key",
    operator_api_key="operator-key",
)
HOOK_ID = "7c0b0d7e-1111-4222-8333-444455556666"
SECRET = "whsec_only_shown_once"


def endpoint(**changes: Any) -> dict[str, Any]:
    return {
        "id": HOOK_ID,
        "owner": "acme",
        "url": "https://shop.example/saga-hooks",
        "description": "orders to the warehouse system",
        "event_types": ["order.shipped", "order.refunded"],
        "enabled": True,
        "disabled_reason": None,
        "created_by": "acme",
        "created_at": "2026-12-06T10:00:00+00:00",
        "updated_at": "2026-12-06T10:00:00+00:00",
        "pending": 0,
        "failing_since": None,
        "last_success_at": None,
        "last_failure_at": None,
        "last_error": None,
        "secret_rotation_ends_at": None,
        **changes,
    }


class Server:
    """A mock order service answering each request with the next of `answers`, recording what it got."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, config: ClientConfig = CONFIG) -> SagaClient:
        return SagaClient(config, transport=httpx.MockTransport(self))

    @property
    def sent(self) -> httpx.Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def test_creating_a_webhook_posts_its_url_with_the_shop_key_and_answers_the_secret() -> None:
    server = Server(httpx.Response(201, json={**endpoint(), "secret": SECRET}))

    created = server.client().create_webhook(
        "https://shop.example/saga-hooks",
        event_types=["order.shipped", "order.refunded"],
        description="orders to the warehouse system",
    )

    assert (server.sent.method, str(server.sent.url)) == ("POST", "http://order.test/webhooks")
    assert server.sent.headers["Authorization"] == "Bearer shop-key"
    assert body_of(server.sent) == {
        "url": "https://shop.example/saga-hooks",
        "event_types": ["order.shipped", "order.refunded"],
        "description": "orders to the warehouse system",
    }
    assert created.secret == SECRET
    assert str(created.id) == HOOK_ID


def test_a_webhook_for_every_type_sends_no_event_types_and_one_type_may_be_a_str() -> None:
    server = Server(*(httpx.Response(201, json={**endpoint(), "secret": SECRET}) for _ in range(2)))
    client = server.client()

    client.create_webhook("https://shop.example/all")
    client.create_webhook("https://shop.example/shipped", event_types="order.shipped")

    assert [body_of(r) for r in server.requests] == [
        {"url": "https://shop.example/all"},
        {"url": "https://shop.example/shipped", "event_types": ["order.shipped"]},
    ]


def test_a_secret_never_shows_in_a_repr() -> None:
    server = Server(
        httpx.Response(201, json={**endpoint(), "secret": SECRET}),
        httpx.Response(200, json={**endpoint(), "secret": SECRET}),
    )
    client = server.client()

    created = client.create_webhook("https://shop.example/saga-hooks")
    rotated = client.rotate_webhook_secret(HOOK_ID)

    assert SECRET not in repr(created) and SECRET not in str(created)
    assert SECRET not in repr(rotated) and SECRET not in str(rotated)


def test_an_operator_creating_or_listing_a_shops_webhooks_names_it_and_sends_the_operator_key() -> None:
    server = Server(
        httpx.Response(201, json={**endpoint(), "secret": SECRET}),
        httpx.Response(200, json={"items": [endpoint()]}),
    )
    client = server.client()

    client.create_webhook("https://shop.example/saga-hooks", owner="acme")
    client.webhooks(owner="acme")

    created, listed = server.requests
    assert body_of(created) == {"url": "https://shop.example/saga-hooks", "owner": "acme"}
    assert str(listed.url) == "http://order.test/webhooks?owner=acme"
    assert {r.headers["Authorization"] for r in server.requests} == {"Bearer operator-key"}


def test_a_client_acting_as_the_operator_sends_its_key_on_every_webhook_call() -> None:
    server = Server(httpx.Response(200, json={"items": []}), httpx.Response(200, json=endpoint()))
    client = server.client(CONFIG.acting_as(Role.OPERATOR))

    client.webhooks()
    client.webhook(HOOK_ID)

    assert {r.headers["Authorization"] for r in server.requests} == {"Bearer operator-key"}


def test_listing_webhooks_answers_the_items() -> None:
    server = Server(httpx.Response(200, json={"items": [endpoint(), endpoint(id=HOOK_ID.replace("7", "8"))]}))

    listed = server.client().webhooks()

    assert str(server.sent.url) == "http://order.test/webhooks"
    assert server.sent.headers["Authorization"] == "Bearer shop-key"
    assert [type(item) for item in listed] == [WebhookEndpoint, WebhookEndpoint]
    assert listed[0].event_types == ["order.shipped", "order.refunded"]


@pytest.mark.parametrize(
    ("method_name", "http_method", "path"),
    [
        ("webhook", "GET", f"/webhooks/{HOOK_ID}"),
        ("disable_webhook", "POST", f"/webhooks/{HOOK_ID}/disable"),
        ("enable_webhook", "POST", f"/webhooks/{HOOK_ID}/enable"),
    ],
)
def test_an_endpoint_call_goes_to_its_path_with_the_shop_key(
    method_name: str, http_method: str, path: str
) -> None:
    server = Server(httpx.Response(200, json=endpoint(enabled=method_name != "disable_webhook")))

    answer = getattr(server.client(), method_name)(HOOK_ID)

    assert (server.sent.method, str(server.sent.url)) == (http_method, f"http://order.test{path}")
    assert server.sent.headers["Authorization"] == "Bearer shop-key"
    assert answer.enabled is (method_name != "disable_webhook")


def test_a_disabled_endpoint_says_why() -> None:
    failing = "2026-12-03T10:00:00+00:00"
    server = Server(
        httpx.Response(
            200,
            json=endpoint(
                enabled=False,
                disabled_reason="every attempt failed for 3 days",
                failing_since=failing,
                pending=7,
                last_error="connection refused",
            ),
        )
    )

    hook = server.client().webhook(HOOK_ID)

    assert (hook.enabled, hook.disabled_reason, hook.pending) == (False, "every attempt failed for 3 days", 7)
    assert hook.failing_since == datetime(2026, 12, 3, 10, tzinfo=UTC)


def test_rotating_a_secret_sends_the_overlap_and_answers_the_new_secret_and_when_the_old_one_ends() -> None:
    ends = "2026-12-07T10:00:00+00:00"
    server = Server(
        httpx.Response(
            200,
            json={**endpoint(secret_rotation_ends_at=ends), "secret": SECRET},
        )
    )

    rotated = server.client().rotate_webhook_secret(HOOK_ID, overlap_seconds=3600)

    assert str(server.sent.url) == f"http://order.test/webhooks/{HOOK_ID}/rotate-secret"
    assert body_of(server.sent) == {"overlap_seconds": 3600}
    assert rotated.secret == SECRET
    assert rotated.secret_rotation_ends_at == datetime(2026, 12, 7, 10, tzinfo=UTC)


def test_the_default_overlap_of_a_rotation_is_a_day() -> None:
    server = Server(httpx.Response(200, json={**endpoint(), "secret": SECRET}))

    server.client().rotate_webhook_secret(HOOK_ID)

    assert body_of(server.sent) == {"overlap_seconds": 86400}


def test_attempts_are_paged_with_limit_and_before_and_read_with_their_outcome() -> None:
    attempt = {
        "id": 41,
        "event_id": "b1f7c0de-0000-4000-8000-000000000001",
        "event_type": "order.shipped",
        "order_id": "o-1",
        "sequence": 3,
        "attempt": 2,
        "at": "2026-12-06T10:00:01+00:00",
        "status_code": None,
        "latency_ms": 10000.5,
        "error": "timeout after 10s",
        "delivered": False,
    }
    server = Server(
        httpx.Response(200, json={"items": [attempt], "next_before": 41}),
        httpx.Response(200, json={"items": [], "next_before": None}),
    )
    client = server.client()

    page = client.webhook_attempts(HOOK_ID, limit=1)
    last = client.webhook_attempts(HOOK_ID, limit=1, before=page.next_before)

    assert [str(r.url) for r in server.requests] == [
        f"http://order.test/webhooks/{HOOK_ID}/attempts?limit=1",
        f"http://order.test/webhooks/{HOOK_ID}/attempts?limit=1&before=41",
    ]
    only = page.items[0]
    assert (only.attempt, only.status_code, only.error, only.delivered) == (
        2,
        None,
        "timeout after 10s",
        False,
    )
    assert last.next_before is None


def test_resending_sends_one_event_or_everything_since_a_time_with_its_zone() -> None:
    server = Server(*(httpx.Response(202, json={"queued": n}) for n in (1, 12, 3)))
    client = server.client()

    one = client.resend_webhook(HOOK_ID, event_id="b1f7c0de-0000-4000-8000-000000000001")
    since = client.resend_webhook(
        HOOK_ID, since=datetime(2026, 12, 6, 11, tzinfo=timezone(timedelta(hours=1)))
    )
    as_text = client.resend_webhook(HOOK_ID, since="2026-12-06T10:00:00Z")

    assert str(server.requests[0].url) == f"http://order.test/webhooks/{HOOK_ID}/resend"
    assert [body_of(r) for r in server.requests] == [
        {"event_id": "b1f7c0de-0000-4000-8000-000000000001"},
        {"since": "2026-12-06T11:00:00+01:00"},
        {"since": "2026-12-06T10:00:00Z"},
    ]
    assert (one.queued, since.queued, as_text.queued) == (1, 12, 3)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({}, "give event_id"),
        ({"event_id": "e-1", "since": "2026-12-06T10:00:00Z"}, "give event_id"),
        ({"since": datetime(2026, 12, 6, 10)}, "timezone-aware"),
    ],
)
def test_a_resend_naming_neither_or_both_or_a_naive_time_is_refused_before_sending(
    options: dict[str, Any], said: str
) -> None:
    server = Server()

    with pytest.raises(ValueError, match=said):
        server.client().resend_webhook(HOOK_ID, **options)

    assert server.requests == []


def test_deleting_a_webhook_answers_nothing() -> None:
    server = Server(httpx.Response(200, json={"id": HOOK_ID, "deleted": True}))

    assert server.client().delete_webhook(HOOK_ID) is None
    assert (server.sent.method, str(server.sent.url)) == ("DELETE", f"http://order.test/webhooks/{HOOK_ID}")
    assert server.sent.headers["Authorization"] == "Bearer shop-key"


def test_an_unknown_webhook_is_not_found() -> None:
    server = Server(httpx.Response(404, json={"error": "not_found", "message": "no such webhook"}))

    with pytest.raises(NotFound):
        server.client().webhook(HOOK_ID)


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (lambda c: c.disable_webhook(HOOK_ID), httpx.Response(200, json=endpoint(enabled=False))),
        (lambda c: c.webhooks(), httpx.Response(200, json={"items": []})),
    ],
)
def test_a_read_or_a_disable_whose_answer_was_lost_is_sent_again(call: Any, answer: httpx.Response) -> None:
    server = Server(httpx.ReadTimeout("slow"), answer)

    call(server.client())

    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_webhook("https://shop.example/saga-hooks"),
        lambda c: c.rotate_webhook_secret(HOOK_ID),
        lambda c: c.resend_webhook(HOOK_ID, event_id="e-1"),
        lambda c: c.delete_webhook(HOOK_ID),
    ],
)
def test_a_create_rotate_resend_or_delete_whose_answer_was_lost_is_not_sent_again(call: Any) -> None:
    server = Server(httpx.ReadTimeout("slow"))

    with pytest.raises(Unavailable, match="may have been applied"):
        call(server.client())

    assert len(server.requests) == 1


def test_the_delete_plan_sends_one_request_and_ends_on_the_answer() -> None:
    plan = Calls(CONFIG).delete_webhook(HOOK_ID)

    request = plan.send(None)
    assert isinstance(request, HttpRequest)
    assert (request.method, request.url) == ("DELETE", f"http://order.test/webhooks/{HOOK_ID}")
    assert "shop-key" not in repr(request)
    sent: Sent = Reply(200, {}, json.dumps({"id": HOOK_ID, "deleted": True}).encode())
    with pytest.raises(StopIteration) as done:
        plan.send(sent)
    assert done.value.value is None


def test_the_async_client_runs_the_same_webhook_calls() -> None:
    server = Server(
        httpx.Response(201, json={**endpoint(), "secret": SECRET}),
        httpx.Response(200, json={"items": [endpoint()]}),
        httpx.Response(200, json={"id": HOOK_ID, "deleted": True}),
    )

    async def main() -> tuple[str, int]:
        async with AsyncSagaClient(CONFIG, transport=httpx.MockTransport(server)) as saga:
            created = await saga.create_webhook("https://shop.example/saga-hooks")
            listed = await saga.webhooks()
            await saga.delete_webhook(created.id)
            return created.secret, len(listed)

    assert asyncio.run(main()) == (SECRET, 1)
    assert [r.method for r in server.requests] == ["POST", "GET", "DELETE"]
