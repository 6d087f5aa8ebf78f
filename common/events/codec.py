"""JSON on the wire: encoding envelopes, and decoding them with errors that say why a message is bad.

Every decode failure is a *permanent* failure of that message: retrying cannot fix it, so the runner
parks it as a dead letter with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from common.database_clock import DATABASE_CLOCK
from common.events.catalogue import CATALOGUE, EventSpec, payload_type_for
from common.events.envelope import Envelope
from common.events.values import Frozen
from common.tenancy import owner_of


class EventDecodeError(Exception):
    """The message cannot be understood: not JSON, no valid envelope, or a payload that fails its schema."""


class UnknownEventType(EventDecodeError):
    """The type name is not in the catalogue (or not expected on this topic)."""


class UnsupportedEventVersion(EventDecodeError):
    """The message was written by a newer producer than this consumer understands."""


@dataclass(frozen=True)
class DecodedEvent:
    envelope: Envelope
    payload: Frozen
    # The `traceparent` of the span that consumes it (common/tracing.py; None when traces are off): work a
    # handler leaves for later keeps it, so whatever does that work continues the saga's trace.
    trace: str | None = None

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def order_id(self) -> str:
        return self.envelope.order_id


def new_envelope(
    payload: Frozen,
    *,
    order_id: str,
    producer: str,
    causation_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a payload with a fresh event id, its catalogue name and version, and the time now."""
    spec = payload_type_for(payload)
    return Envelope(
        event_id=uuid4(),
        type=spec.name,
        version=spec.version,
        order_id=order_id,
        owner=owner_of(order_id),
        occurred_at=occurred_at or DATABASE_CLOCK.now(),
        causation_id=causation_id,
        producer=producer,
        payload=payload.model_dump(mode="json"),
    )


def encode_event(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def spec_for(envelope: Envelope, topic: str | None) -> EventSpec:
    spec = CATALOGUE.get(envelope.type)
    if spec is None:
        raise UnknownEventType(f"unknown event type {envelope.type!r}")
    if topic is not None and spec.topic != topic:
        raise UnknownEventType(f"{envelope.type} belongs on topic {spec.topic!r}, not {topic!r}")
    if envelope.version > spec.version:
        raise UnsupportedEventVersion(
            f"{envelope.type} version {envelope.version} is newer than the supported {spec.version}"
        )
    return spec


def decode_event(raw: bytes | None, *, topic: str | None = None) -> DecodedEvent:
    """Parse and validate one message; raises an EventDecodeError subclass saying what is wrong."""
    if not raw:
        raise EventDecodeError("empty message")
    try:
        document: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"not JSON: {exc}") from exc
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        raise EventDecodeError(f"invalid envelope: {_summarise(exc)}") from exc
    spec = spec_for(envelope, topic)
    try:
        payload = spec.payload.model_validate(envelope.payload)
    except ValidationError as exc:
        raise EventDecodeError(f"invalid {envelope.type} payload: {_summarise(exc)}") from exc
    return DecodedEvent(envelope=envelope, payload=payload)


def _summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
    )
