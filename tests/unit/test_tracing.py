"""One trace per saga: the rules of common/tracing.py and the consumer's spans, on an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common.events import decode_event, encode_event, new_envelope
from common.events.delivery import Delivered, Shipped
from common.messaging.consume_spans import NO_SPANS, ConsumeSpans
from common.messaging.dead_letters import RawMessage
from common.tracing import TRACEPARENT, Tracing, context_of, header_value, traceparent_of, traces_configured

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture()
def exported() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracing = Tracing.with_processor("delivery", SimpleSpanProcessor(exporter))
    yield tracing, exporter
    tracing.shutdown()


def _message(envelope_bytes: bytes, offset: int, traceparent: str | None = PARENT) -> RawMessage:
    return RawMessage("delivery", 0, offset, b"acme:o-1", envelope_bytes, traceparent)


def _span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [span for span in exporter.get_finished_spans() if span.name == name]
    return span


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_traces_are_on_only_with_an_otlp_endpoint_and_the_sdk_not_disabled(
    environ: dict[str, str], on: bool
) -> None:
    assert traces_configured(environ) is on
    assert Tracing.from_environment("order", environ).enabled is on


def test_tracing_off_makes_no_spans_and_no_contexts() -> None:
    tracing = Tracing.off()
    with tracing.span("anything", parent=PARENT) as span:
        assert span is None
        assert tracing.current() is None
    assert tracing.start("x", parent=PARENT, kind=SpanKind.CONSUMER) is None
    message = _message(
        encode_event(new_envelope(Shipped(tracking_code="T"), order_id="acme:o-1", producer="d")), 1
    )
    decoded = decode_event(message.value, topic="delivery")
    assert NO_SPANS.decoded(message, decoded) is decoded
    assert NO_SPANS.traces_for([decoded.envelope]) == []


@pytest.mark.parametrize(
    "malformed", ["", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"]
)
def test_a_malformed_traceparent_starts_a_new_trace_instead_of_failing(
    exported: tuple[Tracing, InMemorySpanExporter], malformed: str
) -> None:
    tracing, exporter = exported
    assert context_of(malformed) is None
    with tracing.span("checkout", parent=malformed):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    assert span.context.trace_id != int(PARENT.split("-")[1], 16)


def test_a_span_continues_the_stored_trace_and_names_itself_as_the_next_parent(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    with tracing.span("refund", parent=PARENT) as span:
        current = tracing.current()
    finished = _span(exporter, "refund")
    assert finished.context.trace_id == int(PARENT.split("-")[1], 16)
    assert finished.parent is not None and finished.parent.span_id == int(PARENT.split("-")[2], 16)
    assert current == traceparent_of(span)
    assert current is not None and current.split("-")[2] == format(finished.context.span_id, "016x")


def test_a_consumed_event_continues_the_trace_of_the_span_that_published_it_and_its_effects_follow(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    shipped = new_envelope(Shipped(tracking_code="T"), order_id="acme:o-1", producer="delivery")
    delivered = new_envelope(Delivered(), order_id="acme:o-2", producer="delivery")
    other_trace = "00-11111111111111111111111111111111-2222222222222222-01"
    messages = [_message(encode_event(shipped), 1), _message(encode_event(delivered), 2, other_trace)]
    spans = ConsumeSpans(tracing, "order", messages)
    decoded = [spans.decoded(m, decode_event(m.value, topic="delivery")) for m in messages]
    emitted = new_envelope(
        Delivered(), order_id="acme:o-2", producer="order", causation_id=delivered.event_id
    )
    follow_up = new_envelope(Delivered(), order_id="acme:o-1", producer="order")
    unrelated = new_envelope(Delivered(), order_id="acme:o-3", producer="order")
    traces = spans.traces_for([emitted, follow_up, unrelated])
    spans.end(messages, ["applied", "duplicate"])

    first, second = _span(exporter, "order process Shipped"), _span(exporter, "order process Delivered")
    assert first.context.trace_id == int(PARENT.split("-")[1], 16)
    assert second.context.trace_id == int(other_trace.split("-")[1], 16)
    assert first.attributes is not None and first.attributes["saga.outcome"] == "applied"
    assert second.attributes is not None and second.attributes["saga.outcome"] == "duplicate"
    assert second.attributes["saga.order_id"] == "acme:o-2"
    # What the handler leaves for later, and what it emits, continue the span of the event that caused it.
    assert decoded[1].trace == traces[0] == traceparent_of_span(second)
    assert traces[1] == decoded[0].trace == traceparent_of_span(first)  # no cause in the batch: its order's
    assert traces[2] is None


def test_a_batch_that_did_not_finish_still_ends_its_spans_without_an_outcome(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    shipped = new_envelope(Shipped(tracking_code="T"), order_id="acme:o-1", producer="delivery")
    messages = [_message(encode_event(shipped), 7)]
    ConsumeSpans(tracing, "order", messages).end(messages, None)
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and "saga.outcome" not in span.attributes


@pytest.mark.parametrize(
    ("headers", "value"),
    [
        ([(TRACEPARENT, PARENT.encode())], PARENT),
        ({TRACEPARENT: PARENT}, PARENT),
        ([("other", b"x")], None),
        ([(TRACEPARENT, b"\xff\xfe")], None),
        (None, None),
    ],
)
def test_the_traceparent_header_is_read_from_either_shape_kafka_gives(
    headers: object, value: str | None
) -> None:
    assert header_value(headers, TRACEPARENT) == value  # type: ignore[arg-type]


def traceparent_of_span(span: ReadableSpan) -> str:
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"


async def test_a_requests_span_is_named_after_its_route_and_probes_and_unknown_paths_add_no_names(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from common.http_tracing import traced_requests

    tracing, exporter = exported
    app = web.Application(middlewares=[traced_requests(tracing)])

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/orders/{order_id}", answer)
    app.router.add_get("/healthz", answer)
    async with TestClient(TestServer(app)) as client:
        await client.get("/orders/o-1", headers={TRACEPARENT: PARENT})
        await client.get("/wp-admin/setup.php")
        await client.get("/healthz")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"GET /orders/{order_id}", "GET unmatched"}
    order = spans["GET /orders/{order_id}"]
    assert order.context.trace_id == int(PARENT.split("-")[1], 16)  # the caller's trace, continued
    assert order.attributes is not None and order.attributes["http.response.status_code"] == 200
    unmatched = spans["GET unmatched"].attributes
    assert unmatched is not None and unmatched["http.response.status_code"] == 404
