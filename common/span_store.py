"""The spans the services export, kept in memory: one saga's trace without a tracing backend.

`SpanStore.receive` takes an OTLP/HTTP export request (protobuf, what the services' exporter sends to
`OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`); `saga_trace` finds a saga's trace by the order id its
spans carry. `SpanReceiver` serves a store on a local port (the end-to-end tests point the platform at
it). Bounded: the oldest spans are forgotten first.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return (
        getattr(value, kind) if kind in ("string_value", "int_value", "bool_value", "double_value") else None
    )


def decode_export(body: bytes) -> list[ReceivedSpan]:
    """The spans of one OTLP export request (raises ValueError for a body that is not one)."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as error:  # protobuf's DecodeError
        raise ValueError(f"not an OTLP trace export: {error}") from error
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        service=service,
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        kind=span.kind,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    )
                )
    return spans


class SpanStore:
    """The last `capacity` spans received, safe to share between the receiving and the reading threads."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._spans: deque[ReceivedSpan] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def receive(self, body: bytes) -> int:
        spans = decode_export(body)
        with self._lock:
            self._spans.extend(spans)
        return len(spans)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def saga_trace(self, order_id: str) -> list[ReceivedSpan]:
        """Every span of the trace(s) whose spans name the saga `order_id` (`shop:order_id`), by start."""
        spans = self.spans()
        traces = {span.trace_id for span in spans if span.attributes.get("saga.order_id") == order_id}
        return sorted((span for span in spans if span.trace_id in traces), key=lambda span: span.start_ns)


class SpanReceiver:
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps what it receives in `store` (a background thread),
    and the last exports as received (`exports`), to hand on to another receiver (the console)."""

    def __init__(self, store: SpanStore | None = None, port: int = 0) -> None:
        self.store = store or SpanStore()
        self.exports: deque[bytes] = deque(maxlen=10_000)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.store, self.exports))
        self._thread = threading.Thread(target=self._server.serve_forever, name="span-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        """What `OTEL_EXPORTER_OTLP_ENDPOINT` should say to send here."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> SpanReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(store: SpanStore, exports: deque[bytes]) -> type[BaseHTTPRequestHandler]:
    class ExportHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != TRACES_PATH:
                self._answer(404, b"")
                return
            try:
                store.receive(body)
            except ValueError as error:
                self._answer(400, str(error).encode())
                return
            exports.append(body)
            self._answer(200, ExportTraceServiceResponse().SerializeToString())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a request line per export would drown the test's output

    return ExportHandler
