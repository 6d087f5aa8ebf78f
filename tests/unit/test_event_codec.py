"""Decoding messages: good ones round-trip, bad ones fail with a reason saying why (they get parked)."""

from __future__ import annotations

import json
import uuid

import pytest

from common.events import (
    EventDecodeError,
    UnknownEventType,
    UnsupportedEventVersion,
    decode_event,
    encode_event,
    new_envelope,
)
from common.events.order import OrderCancelled
from common.events.values import Money


def _cancelled(reason: str = "customer") -> bytes:
    payload = OrderCancelled(
        payment_id=uuid.uuid4(), amount=Money(amount_minor=1999, currency="EUR"), reason=reason
    )
    return encode_event(new_envelope(payload, order_id="acme:o-1", producer="order"))


def _mutate(raw: bytes, **changes: object) -> bytes:
    document = json.loads(raw)
    document.update(changes)
    return json.dumps(document).encode()


def test_an_encoded_event_decodes_to_the_same_payload() -> None:
    decoded = decode_event(_cancelled("timeout"), topic="order")
    assert decoded.type == "OrderCancelled"
    assert decoded.order_id == "acme:o-1" and decoded.envelope.owner == "acme"
    assert isinstance(decoded.payload, OrderCancelled)
    assert decoded.payload.reason == "timeout"
    assert decoded.payload.amount == Money(amount_minor=1999, currency="EUR")


def test_an_event_from_before_owners_is_read_as_one_of_the_legacy_owners_orders() -> None:
    raw = json.loads(_cancelled())
    del raw["owner"]
    raw["order_id"] = "o-1"

    decoded = decode_event(json.dumps(raw).encode(), topic="order")

    assert (decoded.order_id, decoded.envelope.owner) == ("legacy:o-1", "legacy")


def test_an_event_whose_owner_is_not_its_orders_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="owner 'globex' is not the owner"):
        decode_event(_mutate(_cancelled(), owner="globex"), topic="order")


def test_an_older_version_is_accepted_and_unknown_fields_are_ignored() -> None:
    raw = json.loads(_cancelled())
    raw["payload"]["added_by_a_newer_minor_schema"] = True
    decoded = decode_event(json.dumps(raw).encode(), topic="order")
    assert decoded.envelope.version == 1


BAD_MESSAGES = [
    pytest.param(b"", EventDecodeError, "empty", id="empty"),
    pytest.param(b"\xff\xfe garbage", EventDecodeError, "not JSON", id="garbage-bytes"),
    pytest.param(b'{"hello": 1}', EventDecodeError, "invalid envelope", id="no-envelope"),
    pytest.param(
        _mutate(_cancelled(), type="OrderExploded"), UnknownEventType, "unknown event type", id="unknown-type"
    ),
    pytest.param(_mutate(_cancelled(), version=2), UnsupportedEventVersion, "newer", id="future-version"),
    pytest.param(
        _mutate(_cancelled(), payload={"reason": "customer"}),
        EventDecodeError,
        "payload",
        id="missing-fields",
    ),
    pytest.param(
        _mutate(
            _cancelled(),
            payload={
                "payment_id": str(uuid.uuid4()),
                "reason": "bored",
                "amount": {"amount_minor": 1, "currency": "EUR"},
            },
        ),
        EventDecodeError,
        "reason",
        id="unknown-cancel-reason",
    ),
]


@pytest.mark.parametrize(("raw", "error", "says"), BAD_MESSAGES)
def test_a_bad_message_fails_with_a_reason(raw: bytes, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says):
        decode_event(raw, topic="order")


def test_an_event_on_the_wrong_topic_is_rejected() -> None:
    with pytest.raises(UnknownEventType, match="belongs on topic 'order'"):
        decode_event(_cancelled(), topic="payment")


def test_money_is_never_a_float() -> None:
    with pytest.raises(ValueError):
        Money(amount_minor=12.5, currency="EUR")  # type: ignore[arg-type]
