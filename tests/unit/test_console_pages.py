"""The console's pages rendered from what the services answer (faked here: one small aiohttp app plays
the three services' operator endpoints), so every template is exercised without Kafka or PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.config import Settings
from console.app import create_app
from saga_tools.local_stack.ports import free_port

KEY = "operator-key-0123456789"
ORDER = {
    "order_id": "o-1",
    "owner": "acme",
    "status": "SCHEDULED",
    "payment_id": "5b0c6f0e-0000-4000-8000-000000000001",
    "customer_id": "c-1",
    "amount": {"amount_minor": 1250, "currency": "EUR"},
    "lines": [],
    "cancel_reason": None,
    "cancellation": None,
    "waiting_for": "the carrier: Shipped from delivery",
    "deadline_at": None,
    "created_at": "2026-12-06T10:00:00+00:00",
    "updated_at": "2026-12-06T10:00:02+00:00",
}
LETTER = {
    "id": 12,
    "consumer": "order",
    "topic": "delivery",
    "partition": 1,
    "offset": 40,
    "key": "acme:o-1",
    "order_id": "acme:o-1",
    "event_id": None,
    "event_type": "Shipped",
    "error": "event version 99 is newer than the supported one",
    "status": "parked",
    "blocked_by": None,
    "parked_at": "2026-12-06T10:00:03+00:00",
    "resolved_at": None,
    "resolved_by": None,
    "value": '{"type": "Shipped", "version": 99}',
}
METRICS = """# TYPE saga_dead_letters_parked gauge
saga_dead_letters_parked{service="x"} 1.0
# TYPE saga_outbox_pending gauge
saga_outbox_pending{service="x"} 3.0
# TYPE saga_events counter
saga_events_total{outcome="applied",service="x"} 41.0
saga_events_total{outcome="parked",service="x"} 1.0
# TYPE saga_consumer_lag gauge
saga_consumer_lag{partition="0",service="x",topic="payment"} 3.0
saga_consumer_lag{partition="1",service="x",topic="payment"} 4.0
"""


def fake_services() -> web.Application:
    """Every service's operator endpoints at once (the console is pointed at this app for all three)."""

    async def orders(request: web.Request) -> web.Response:
        customer = request.query.get("customer_id")
        if customer is not None and len(customer) > 64:
            message = "customer_id: String should have at most 64 characters"
            return web.json_response({"error": "invalid_request", "message": message}, status=400)
        if customer is not None:
            items = [ORDER] if customer == ORDER["customer_id"] else []
            return web.json_response(
                {"items": items, "total": len(items), "limit": 100, "offset": 0, "next_after": None}
            )
        if "stuck_for" in request.query:
            return web.json_response(
                {"items": [ORDER], "total": 1, "limit": 20, "offset": 0, "next_after": None}
            )
        status = request.query.get("status")
        items = [{**ORDER, "status": "REFUND_FAILED"}] if status == "REFUND_FAILED" else []
        total = {"SCHEDULED": 1, "COMPLETED": 7, "REFUND_FAILED": 1}.get(status or "", 0)
        return web.json_response(
            {"items": items, "total": total, "limit": 1, "offset": 0, "next_after": None}
        )

    async def order(request: web.Request) -> web.Response:
        if request.match_info["order_id"] != "acme:o-1":
            return web.json_response({"error": "not_found", "message": "no such order"}, status=404)
        return web.json_response({**ORDER, "timeline": []})

    async def payment(request: web.Request) -> web.Response:
        if request.match_info["order_id"] != "acme:o-1":
            return web.json_response({"error": "not_found", "message": "no payment"}, status=404)
        refund = {"refund_id": "r-1", "status": "FAILED", "attempts": 5, "last_error": "provider down"}
        return web.json_response(
            {
                "owner": "acme",
                "order_id": "o-1",
                "status": "CAPTURED",
                "amount": ORDER["amount"],
                "failure_reason": None,
                "refund": {**refund, "retried_by": None, "updated_at": ORDER["updated_at"]},
            }
        )

    async def shipment(request: web.Request) -> web.Response:
        return web.json_response({"error": "not_found", "message": "no shipment"}, status=404)

    async def letters(request: web.Request) -> web.Response:
        mine = request.query.get("order_id", LETTER["order_id"]) == LETTER["order_id"]
        return web.json_response({"items": [LETTER] if mine else [], "limit": 100, "offset": 0})

    async def letter(request: web.Request) -> web.Response:
        if request.match_info["letter_id"] != "12":
            return web.json_response({"error": "not_found", "message": "no such letter"}, status=404)
        return web.json_response(LETTER)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"ready": True, "checks": {"database": "ok", "broker": "ok"}})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=METRICS, content_type="text/plain")

    async def inventory(request: web.Request) -> web.Response:
        row = {"sku": "BOOK-1", "on_hand": 5, "reserved": 1, "shipped": 2, "stocked": 8, "updated_by": "ops"}
        return web.json_response({"items": [row], "next_after": None})

    app = web.Application()
    app.router.add_get("/orders", orders)
    app.router.add_get("/orders/{order_id}", order)
    app.router.add_get("/payments/{order_id}", payment)
    app.router.add_get("/shipments/{order_id}", shipment)
    app.router.add_get("/dead-letters", letters)
    app.router.add_get("/dead-letters/{letter_id}", letter)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/inventory", inventory)
    return app


async def signed_in(settings: Settings) -> TestClient[web.Request, web.Application]:
    """A console client signed in (the sign-in check is answered by the fake's dead-letter listing)."""
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    form = await (await client.get("/sign-in")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    response = await client.post("/sign-in", data={"csrf_token": token.group(1), "api_key": KEY})
    assert response.url.path == "/", await response.text()
    return client


@pytest.fixture()
async def services() -> AsyncIterator[str]:
    server = TestServer(fake_services())
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture()
async def console(services: str) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = Settings.model_validate(
        {"PAYMENT_URL": services, "ORDER_URL": services, "DELIVERY_URL": services}
    )
    client = await signed_in(settings)
    try:
        yield client
    finally:
        await client.close()


async def page(client: TestClient[web.Request, web.Application], path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text
    return text


async def test_the_overview_shows_sagas_by_status_each_services_health_and_the_stuck_sagas(
    console: Any,
) -> None:
    html = await page(console, "/")
    assert re.search(r"s-completed\">COMPLETED</span><b>7</b>", html)
    assert 'id="service-delivery"' in html and "database: ok" in html
    assert re.search(r'<a class="bad" href="/dead-letters">1</a>', html)  # parked, from /metrics
    assert "41 / 0 / 1" in html  # events applied / duplicate / parked
    assert '<td class="num lag">7</td>' in html  # the consumer's lag, over its partitions
    assert '<td class="num throughput">…</td>' in html  # a rate needs a second reading
    assert 'href="/orders/acme:o-1"' in html and "the carrier: Shipped from delivery" in html
    assert 'hx-get="/overview/live" hx-trigger="every 3s"' in html
    fragment = await page(console, "/overview/live")
    assert fragment.lstrip().startswith('<div id="live"') and "<html" not in fragment


async def test_an_order_page_tells_its_story_and_its_fragment_refreshes_it(console: Any) -> None:
    html = await page(console, "/orders/acme:o-1")
    assert "Waiting for the carrier" in html and "newer than the supported one" in html
    assert 'action="/dead-letters/order/12/retry"' in html
    assert 'action="/refunds/acme:o-1/retry"' in html and "provider down" in html
    fragment = await page(console, "/orders/acme:o-1/story")
    assert fragment.lstrip().startswith('<div id="story"') and "<html" not in fragment


async def test_an_unknown_order_is_a_404_page_that_says_how_to_name_an_order(console: Any) -> None:
    html = await page(console, "/orders/o-404", status=404)
    assert "no service knows order o-404" in html and "shop:order_id" in html
    assert (await console.get("/search?q=acme:o-1", allow_redirects=False)).headers[
        "Location"
    ] == "/orders/acme:o-1"


async def test_dead_letters_of_every_service_are_listed_and_one_is_shown_with_its_message(
    console: Any,
) -> None:
    html = await page(console, "/dead-letters")
    assert html.count('action="/dead-letters/') == 6  # retry and discard, in each of the three services
    shown = await page(console, "/dead-letters/order/12")
    assert "delivery partition 1 offset 40" in shown and "&#34;version&#34;: 99" in shown
    assert "has no dead letter 13" in await page(console, "/dead-letters/order/13", status=404)


async def test_failed_refunds_and_stock_are_listed_with_their_actions(console: Any) -> None:
    refunds = await page(console, "/refunds")
    assert 'action="/refunds/acme:o-1/retry"' in refunds and "provider down" in refunds
    stock = await page(console, "/stock")
    assert "BOOK-1" in stock and 'action="/stock/BOOK-1"' in stock


async def test_a_service_that_does_not_answer_is_shown_as_such_and_the_overview_still_renders(
    services: str,
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = Settings.model_validate({"PAYMENT_URL": services, "ORDER_URL": services, "DELIVERY_URL": down})
    client = await signed_in(settings)
    try:
        html = await page(client, "/")
        assert "not ready" in html and "the delivery service is not reachable" in html
        assert "COMPLETED</span><b>7</b>" in html
    finally:
        await client.close()


def _export(order_id: str) -> bytes:
    """An OTLP export of a two-span saga trace, as a service's exporter sends it."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from common.tracing import Tracing

    exporter = InMemorySpanExporter()
    tracing = Tracing.with_processor("order", SimpleSpanProcessor(exporter))
    with (
        tracing.span("POST /checkout"),
        tracing.span(
            "order process Delivered", attributes={"saga.order_id": order_id, "saga.outcome": "applied"}
        ),
    ):
        pass
    tracing.shutdown()
    return bytes(encode_spans(exporter.get_finished_spans()).SerializeToString())


async def test_a_console_that_receives_traces_draws_the_sagas_spans_under_their_causes(services: str) -> None:
    settings = Settings.model_validate(
        {"PAYMENT_URL": services, "ORDER_URL": services, "DELIVERY_URL": services, "CONSOLE_TRACES": "true"}
    )
    client = await signed_in(settings)
    try:
        # The exporters have no session: the receiving path is public, and only takes OTLP.
        async with TestClient(TestServer(create_app(settings))) as exporter:
            garbage = await exporter.post("/v1/traces", data=b"\xff not protobuf")
            assert garbage.status == 400
        received = await client.post("/v1/traces", data=_export("acme:o-1"))
        assert received.status == 200, await received.text()
        story = await page(client, "/orders/acme:o-1")
        trace = story[story.index('id="trace"') :]
        assert trace.index("POST /checkout") < trace.index("order process Delivered")
        assert 'padding-left: 1em">order process Delivered' in trace  # the child, under its parent
        assert "applied" in trace
    finally:
        await client.close()


async def test_a_console_that_does_not_receive_traces_has_no_receiver_and_no_trace_section(
    console: Any,
) -> None:
    assert (await console.post("/v1/traces", data=_export("acme:o-1"))).status == 404
    assert 'id="trace"' not in await page(console, "/orders/acme:o-1")


async def test_orders_are_searched_by_customer_and_a_search_the_service_refuses_says_why(
    console: Any,
) -> None:
    html = await page(console, "/search?customer=c-1")
    assert "1 order(s)" in html and 'href="/orders/acme:o-1"' in html
    assert "0 order(s)" in await page(console, "/search?customer=c-2")
    refused = await page(console, "/search?customer=" + "x" * 65)
    assert 'id="search-error"' in refused and "at most 64 characters" in refused
