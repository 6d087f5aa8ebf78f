"""One trace per saga across the three services: W3C trace context, carried with the saga's work.

How a saga stays one trace:
- The HTTP request that starts it (the checkout) is a span that continues the caller's `traceparent`
  header, or starts a new trace.
- Every event written to the outbox keeps the context of the span that caused it (`outbox.trace_context`);
  the relay publishes it under a `publish` span, whose context travels in the Kafka header `traceparent`.
- Each consumer continues that context in one `process` span per event (its type, order and outcome:
  applied, duplicate, parked...); the events a handler emits carry that span's context.
- Work a handler leaves for later (a refund for the refund worker, a shipment for the carrier) keeps the
  context with its row, and whatever advances it later continues it.

Off unless an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and the SDK's other standard variables) and `OTEL_SDK_DISABLED` is
not true. Off, every call here is a flag check: no span objects, no headers, no stored contexts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_W3C = TraceContextTextMapPropagator()
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

Attributes = Mapping[str, str | int | bool]


def traces_configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint, and the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def context_of(traceparent: str | None) -> Context | None:
    """The remote parent a `traceparent` value names (None for none, or for a malformed one: a bad
    header from a caller starts a new trace, it never fails the request or the event)."""
    if not traceparent:
        return None
    context = _W3C.extract({TRACEPARENT: traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def traceparent_of(span: Span | None) -> str | None:
    """The W3C `traceparent` value naming `span` as the parent (None for no span)."""
    if span is None or not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT)


class Tracing:
    """A service's tracer, or nothing when traces are off (`Tracing.off()`, the default everywhere)."""

    def __init__(self, tracer: Tracer | None = None, shutdown: Any = None) -> None:
        self._tracer = tracer
        self._shutdown = shutdown
        self.enabled = tracer is not None

    @classmethod
    def off(cls) -> Tracing:
        return cls()

    @classmethod
    def from_environment(cls, service_name: str, environ: Mapping[str, str] = os.environ) -> Tracing:
        """The OTLP/HTTP exporter the standard variables configure, batching in the background; off when
        `traces_configured` says so. Imported here, so a service without traces never loads the SDK."""
        if not traces_configured(environ):
            return cls.off()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        return cls.with_processor(service_name, BatchSpanProcessor(OTLPSpanExporter()))

    @classmethod
    def with_processor(cls, service_name: str, processor: Any) -> Tracing:
        """Traces sent to `processor` (unit tests give an in-memory exporter's)."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(processor)
        return cls(provider.get_tracer("saga-platform"), provider.shutdown)

    def shutdown(self) -> None:
        """Send what is still batched (the SDK also does it when the process exits)."""
        if self._shutdown is not None:
            self._shutdown()

    @contextmanager
    def span(
        self,
        name: str,
        *,
        parent: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes | None = None,
    ) -> Iterator[Span | None]:
        """A span, current inside the block: the child of `parent` (a stored `traceparent`) when given,
        else of the current span."""
        if self._tracer is None:
            yield None
            return
        with self._tracer.start_as_current_span(
            name, context=context_of(parent), kind=kind, attributes=attributes
        ) as span:
            yield span

    def start(
        self, name: str, *, parent: str | None, kind: SpanKind, attributes: Attributes | None = None
    ) -> Span | None:
        """A span the caller ends (several at once, as a batch of consumed events has)."""
        if self._tracer is None:
            return None
        return self._tracer.start_span(name, context=context_of(parent), kind=kind, attributes=attributes)

    def current(self) -> str | None:
        """The `traceparent` of the current span: what an event written now should carry."""
        if self._tracer is None:
            return None
        return traceparent_of(trace.get_current_span())


def header_value(headers: Iterable[tuple[str, Any]] | Mapping[str, Any] | None, name: str) -> str | None:
    """A Kafka header's value as text (aiokafka gives a list of (name, bytes) pairs; Faust sometimes a
    mapping), None when absent or not UTF-8."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        if key == name:
            if isinstance(value, bytes):
                try:
                    return value.decode("ascii")
                except UnicodeDecodeError:
                    return None
            return value if isinstance(value, str) else None
    return None
