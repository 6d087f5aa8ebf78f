"""The `process` spans of the messages the runner is applying: one per message, the child of the span
that published it (its `traceparent` header), so a saga is one trace across the services.

A batch applies many messages in one transaction, of as many sagas, so there is no single current span:
the events a handler emits find their trace through their `causation_id`, the consumed event that caused
them. With traces off this is `NO_SPANS`, whose methods do nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from uuid import UUID

from opentelemetry.trace import Span, SpanKind

from common.events import DecodedEvent, Envelope
from common.messaging.dead_letters import RawMessage
from common.tracing import Tracing, traceparent_of

_Position = tuple[str, int, int]


def _position(message: RawMessage) -> _Position:
    return (message.topic, message.partition, message.offset)


class ConsumeSpans:
    def __init__(self, tracing: Tracing, consumer: str, messages: Sequence[RawMessage]) -> None:
        self._consumer = consumer
        self._spans: dict[_Position, Span] = {}
        self._traces: dict[UUID, str] = {}
        self._order_traces: dict[str, str] = {}
        if not tracing.enabled:
            return
        for message in messages:
            span = tracing.start(
                f"{consumer} process",
                parent=message.traceparent,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": message.topic,
                    "messaging.destination.partition.id": str(message.partition),
                    "messaging.kafka.offset": message.offset,
                },
            )
            if span is not None:
                self._spans[_position(message)] = span

    def decoded(self, message: RawMessage, decoded: DecodedEvent) -> DecodedEvent:
        """Names the message's span after its event, and gives the event that span's context (which the
        handler keeps with work it leaves for later)."""
        span = self._spans.get(_position(message))
        if span is None:
            return decoded
        envelope = decoded.envelope
        span.update_name(f"{self._consumer} process {envelope.type}")
        span.set_attributes(
            {
                "saga.order_id": envelope.order_id,
                "saga.event_type": envelope.type,
                "saga.event_id": str(envelope.event_id),
            }
        )
        trace = traceparent_of(span)
        if trace is None:
            return decoded
        self._traces[envelope.event_id] = trace
        self._order_traces[envelope.order_id] = trace
        return replace(decoded, trace=trace)

    def traces_for(self, events: Sequence[Envelope]) -> list[str | None]:
        """Each emitted event's trace: the span of the consumed event that caused it, else (a follow-up
        such as an early cancel applied as the order is created) of its order's event (empty when off)."""
        if not self._traces:
            return []
        return [
            (self._traces.get(event.causation_id) if event.causation_id else None)
            or self._order_traces.get(event.order_id)
            for event in events
        ]

    def end(self, messages: Sequence[RawMessage], outcomes: Sequence[str] | None) -> None:
        """Ends every span, with each message's outcome (none when the batch did not finish)."""
        for index, message in enumerate(messages):
            span = self._spans.pop(_position(message), None)
            if span is None:
                continue
            if outcomes is not None and index < len(outcomes):
                span.set_attribute("saga.outcome", str(outcomes[index]))
            span.end()


NO_SPANS = ConsumeSpans(Tracing.off(), "", ())
