"""The event catalogue: a versioned envelope and one module of payload types per topic."""

from common.events.catalogue import CATALOGUE, EventSpec, payload_type_for
from common.events.codec import (
    DecodedEvent,
    EventDecodeError,
    UnknownEventType,
    UnsupportedEventVersion,
    decode_event,
    encode_event,
    new_envelope,
)
from common.events.envelope import Envelope

__all__ = [
    "CATALOGUE",
    "DecodedEvent",
    "Envelope",
    "EventDecodeError",
    "EventSpec",
    "UnknownEventType",
    "UnsupportedEventVersion",
    "decode_event",
    "encode_event",
    "new_envelope",
    "payload_type_for",
]
