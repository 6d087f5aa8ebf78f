"""One saga, one trace: on the real stack, the spans the three services export (OTLP/HTTP, to the suite's
in-memory receiver) form one trace in causal order, from the checkout to the last event, compensations
and the refund worker included."""

from __future__ import annotations

import time
import uuid

from common.config import Service
from common.span_store import ReceivedSpan, SpanReceiver
from tests.carrier_steps import HAPPY_EVENTS
from tests.e2e.conftest import Shop
from tests.e2e.traced import trace_with, traced_checkout
from tests.keys import SUITE_SHOP

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds


def _assert_one_causal_trace(spans: list[ReceivedSpan], root: ReceivedSpan) -> None:
    """One trace; every span but `root` is the child of a span in it, starting no earlier than its parent;
    and every consumed event continues the span that published that very event."""
    by_id = {span.span_id: span for span in spans}
    assert {span.trace_id for span in spans} == {root.trace_id}
    assert {span.service for span in spans} == {"payment", "order", "delivery"}
    for span in spans:
        if span is root:
            continue
        assert span.parent_id in by_id, f"{span.service} {span.name} has no parent in the trace"
        parent = by_id[span.parent_id]
        assert span.start_ns >= parent.start_ns, f"{span.name} starts before its parent {parent.name}"
        if span.kind == CONSUMER:
            event_type = span.attributes["saga.event_type"]
            assert (parent.kind, parent.name) == (PRODUCER, f"publish {event_type}"), span.name


def _applied(spans: list[ReceivedSpan], service: str, event_type: str) -> ReceivedSpan:
    (span,) = [s for s in spans if s.service == service and s.name == f"{service} process {event_type}"]
    assert span.attributes["saga.outcome"] == "applied"
    return span


def test_a_saga_is_one_trace_across_the_three_services_continuing_the_shops_own_trace(
    shop: Shop, span_receiver: SpanReceiver
) -> None:
    order_id, shops_trace, shops_span = traced_checkout(shop, shop.stock(2))
    shop.ship_and_deliver(order_id)
    shop.wait_for(order_id, "COMPLETED")

    consumed = {
        ("order", "PaymentCompleted"),
        ("delivery", "OrderPlaced"),
        *[("order", event) for event in HAPPY_EVENTS[1:]],  # DeliveryScheduled, then the carrier's
    }
    wanted = {(service, f"{service} process {event}") for service, event in consumed}
    spans = trace_with(span_receiver, f"{SUITE_SHOP}:{order_id}", wanted | {("payment", "POST /checkout")})

    (checkout,) = [span for span in spans if span.name == "POST /checkout"]
    assert (checkout.kind, checkout.trace_id, checkout.parent_id) == (SERVER, shops_trace, shops_span)
    assert checkout.attributes["http.response.status_code"] == 202
    _assert_one_causal_trace(spans, root=checkout)
    for service, event in consumed:
        _applied(spans, service, event)
    # The carrier's steps continue the saga from the shipment, not from the carrier's own request.
    shipped = next(span for span in spans if span.name == "publish Shipped")
    assert shipped.parent_id == _applied(spans, "delivery", "OrderPlaced").span_id


def test_a_cancel_through_delivery_and_its_refund_stay_in_the_sagas_trace(
    shop: Shop, span_receiver: SpanReceiver
) -> None:
    order_id, shops_trace, _ = traced_checkout(shop, shop.stock(2))
    shop.wait_for(order_id, "SCHEDULED")
    # The shop's cancel carries no trace of its own: the saga's trace is continued from the order.
    cancel = shop.http.post(shop.url(Service.ORDER, f"/orders/{order_id}/cancel"))
    assert cancel.status_code == 202, cancel.text
    shop.wait_for(order_id, "REFUNDED")

    consumed = {
        ("order", "PaymentCompleted"),
        ("delivery", "OrderPlaced"),
        ("delivery", "OrderCancellationRequested"),
        ("order", "CancellationConfirmed"),
        ("payment", "OrderCancelled"),
        ("order", "PaymentRefunded"),
    }
    wanted = {(service, f"{service} process {event}") for service, event in consumed}
    spans = trace_with(span_receiver, f"{SUITE_SHOP}:{order_id}", wanted | {("payment", "refund")})

    (checkout,) = [span for span in spans if span.name == "POST /checkout"]
    assert checkout.trace_id == shops_trace
    _assert_one_causal_trace(spans, root=checkout)
    # The cancel request's own span was not sampled (it came without a trace): only the saga's is kept.
    assert not [span for span in spans if span.name.startswith("POST /orders/")]
    for service, event in consumed:
        _applied(spans, service, event)
    (refund,) = [span for span in spans if span.name == "refund"]
    assert refund.parent_id == _applied(spans, "payment", "OrderCancelled").span_id
    refunded = next(span for span in spans if span.name == "publish PaymentRefunded")
    assert refunded.parent_id == refund.span_id
    requested = next(span for span in spans if span.name == "publish OrderCancellationRequested")
    assert requested.parent_id == _applied(spans, "order", "PaymentCompleted").span_id


def test_a_checkout_without_a_sampled_trace_is_not_traced_when_the_sampler_follows_the_caller(
    shop: Shop, span_receiver: SpanReceiver
) -> None:
    order_id = shop.checkout([(shop.stock(1), 1)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    time.sleep(0.5)  # three export rounds of every service
    assert span_receiver.store.saga_trace(f"{SUITE_SHOP}:{order_id}") == []


def test_a_malformed_traceparent_from_a_caller_is_ignored_not_refused(shop: Shop) -> None:
    sku = shop.stock(1)
    response = shop.http.post(
        shop.url(Service.PAYMENT, "/checkout"),
        json=shop.checkout_body([(sku, 1)]),
        headers={"Idempotency-Key": uuid.uuid4().hex, "traceparent": "not-a-trace"},
    )
    assert response.status_code == 202, response.text
    shop.wait_for(response.json()["order_id"], "SCHEDULED")  # and the saga goes on as any other
