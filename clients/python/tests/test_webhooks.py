"""`saga_client.webhooks`: signing and verifying a webhook request, and reading its event."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from saga_client import InvalidSignature, OrderStatus, SagaError, WebhookEvent, WebhookEventType, webhooks
from saga_client.models import CARRIER_STEPS, Cancellation

SECRET = "whsec_current_0123456789abcdef"
OLD_SECRET = "whsec_previous_fedcba9876543210"
NOW = 1_765_015_200


def event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "b1f7c0de-0000-4000-8000-000000000001",
        "type": "order.shipped",
        "version": 1,
        "sequence": 3,
        "occurred_at": "2026-12-06T10:00:00.123456+00:00",
        "order": {
            "order_id": "o-1",
            "owner": "acme",
            "status": "SHIPPED",
            "payment_id": "6b1f8a1e-0c55-4a8e-9f5c-7b1d2f3e4a5b",
            "customer_id": "c-9",
            "amount": {"amount_minor": 2599, "currency": "EUR"},
            "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 2599}],
            "cancel_reason": None,
            "cancellation": None,
        },
    }
    body.update(changes)
    return body


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


BODY = encoded(event())


def rejected(body: bytes, header: str | None, secrets: Any = SECRET, **options: Any) -> InvalidSignature:
    with pytest.raises(InvalidSignature) as raised:
        webhooks.verify(body, header, secrets, **{"now": NOW, **options})
    return raised.value


def test_a_signed_body_verifies_and_reads_as_its_event() -> None:
    header = webhooks.sign(BODY, SECRET, timestamp=NOW)

    verified = webhooks.verify(BODY, header, [SECRET], now=NOW)

    assert verified.type is WebhookEventType.ORDER_SHIPPED
    assert verified.sequence == 3
    assert verified.order.order_id == "o-1"
    assert verified.order.status is OrderStatus.SHIPPED
    assert verified.order.amount.amount_minor == 2599
    assert str(verified.id) == "b1f7c0de-0000-4000-8000-000000000001"


def test_the_header_is_t_then_one_lowercase_hex_hmac_of_t_dot_body_per_secret_in_order() -> None:
    header = webhooks.sign(BODY, [SECRET, OLD_SECRET], timestamp=NOW)

    expected = [
        hmac.new(key.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
        for key in (SECRET, OLD_SECRET)
    ]
    assert header == f"t={NOW},v1={expected[0]},v1={expected[1]}"


def test_during_a_rotation_a_request_signed_with_both_verifies_with_either_secret() -> None:
    header = webhooks.sign(BODY, [SECRET, OLD_SECRET], timestamp=NOW)

    assert webhooks.verify(BODY, header, OLD_SECRET, now=NOW).sequence == 3
    assert webhooks.verify(BODY, header, SECRET, now=NOW).sequence == 3
    assert webhooks.verify(BODY, header, ["whsec_unrelated", SECRET], now=NOW).sequence == 3


def test_a_receiver_holding_both_secrets_accepts_a_request_signed_with_either() -> None:
    for key in (SECRET, OLD_SECRET):
        header = webhooks.sign(BODY, key, timestamp=NOW)
        assert webhooks.verify(BODY, header, [SECRET, OLD_SECRET], now=NOW).sequence == 3


def test_a_str_body_is_signed_and_verified_as_its_utf8_bytes() -> None:
    text = BODY.decode()

    assert webhooks.sign(text, SECRET, timestamp=NOW) == webhooks.sign(BODY, SECRET, timestamp=NOW)
    assert webhooks.verify(text, webhooks.sign(BODY, SECRET, timestamp=NOW), SECRET, now=NOW).sequence == 3


def test_a_tampered_body_does_not_verify() -> None:
    header = webhooks.sign(BODY, SECRET, timestamp=NOW)
    tampered = BODY.replace(b"2599", b"1", 1)

    assert rejected(tampered, header).reason == "mismatch"


def test_a_body_serialized_again_does_not_verify_only_the_raw_bytes_do() -> None:
    header = webhooks.sign(BODY, SECRET, timestamp=NOW)
    again = json.dumps(json.loads(BODY), separators=(",", ":")).encode()

    assert rejected(again, header).reason == "mismatch"


def test_a_request_signed_with_another_secret_does_not_verify_and_the_error_shows_no_secret() -> None:
    header = webhooks.sign(BODY, "whsec_someone_elses", timestamp=NOW)

    error = rejected(BODY, header, [SECRET, OLD_SECRET])

    assert error.reason == "mismatch"
    assert isinstance(error, SagaError)
    assert "2 secret" in str(error)
    assert not any(secret in str(error) for secret in (SECRET, OLD_SECRET, "whsec_someone_elses"))


def test_a_changed_timestamp_does_not_verify() -> None:
    header = webhooks.sign(BODY, SECRET, timestamp=NOW).replace(f"t={NOW}", f"t={NOW + 1}")

    assert rejected(BODY, header).reason == "mismatch"


@pytest.mark.parametrize(
    ("signed_at", "reason", "said"),
    [
        (NOW - 301, "too_old", "301s old"),
        (NOW + 301, "too_new", "301s in the future"),
    ],
)
def test_a_timestamp_beyond_the_tolerance_either_way_is_refused(
    signed_at: int, reason: str, said: str
) -> None:
    header = webhooks.sign(BODY, SECRET, timestamp=signed_at)

    error = rejected(BODY, header)

    assert error.reason == reason
    assert said in str(error)


def test_a_timestamp_at_the_tolerance_either_way_is_accepted_and_the_tolerance_can_be_set() -> None:
    for signed_at in (NOW - 300, NOW + 300):
        header = webhooks.sign(BODY, SECRET, timestamp=signed_at)
        assert webhooks.verify(BODY, header, SECRET, now=NOW).sequence == 3

    header = webhooks.sign(BODY, SECRET, timestamp=NOW - 30)
    assert rejected(BODY, header, tolerance=10).reason == "too_old"


def test_a_signature_of_another_secret_is_reported_as_such_however_old() -> None:
    header = webhooks.sign(BODY, "whsec_someone_elses", timestamp=NOW - 86400)

    assert rejected(BODY, header).reason == "mismatch"


def test_without_now_the_clock_of_this_machine_is_used() -> None:
    assert webhooks.verify(BODY, webhooks.sign(BODY, SECRET), SECRET).sequence == 3
    with pytest.raises(InvalidSignature, match="old"):
        webhooks.verify(BODY, webhooks.sign(BODY, SECRET, timestamp=NOW), SECRET)


@pytest.mark.parametrize("header", [None, ""])
def test_no_header_is_refused_as_missing(header: str | None) -> None:
    error = rejected(BODY, header)

    assert error.reason == "missing"
    assert "no Saga-Signature header" in str(error)


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("v1=abc", "no timestamp"),
        (f"t={NOW}", "no v1 signature"),
        (f"t={NOW},v0=abc", "no v1 signature"),
        (f"t=soon,v1={'0' * 64}", "not Unix seconds"),
        (f"t=-5,v1={'0' * 64}", "not Unix seconds"),
        (f"t={NOW}.5,v1={'0' * 64}", "not Unix seconds"),
        (f"t={NOW},t={NOW},v1={'0' * 64}", "two timestamps"),
        (f"t={NOW},v1", "is not name=value"),
        ("5257a869", "is not name=value"),
        ("sha256=5257a869", "no timestamp"),
    ],
)
def test_a_malformed_header_is_refused_saying_what_is_wrong(header: str, said: str) -> None:
    error = rejected(BODY, header)

    assert error.reason == "malformed"
    assert said in str(error)


def test_an_unknown_scheme_beside_v1_is_ignored() -> None:
    signed = webhooks.sign(BODY, SECRET, timestamp=NOW)
    t, v1 = signed.split(",")

    for header in (f"{t},v0=deadbeef,{v1}", f"{t},{v1},v2=cafe", f" {t} , {v1} ,"):
        assert webhooks.verify(BODY, header, SECRET, now=NOW).sequence == 3


def test_a_signature_in_uppercase_hex_verifies() -> None:
    t, v1 = webhooks.sign(BODY, SECRET, timestamp=NOW).split(",")

    assert webhooks.verify(BODY, f"{t},{v1.upper().replace('V1=', 'v1=')}", SECRET, now=NOW).sequence == 3


@pytest.mark.parametrize("secrets", [[], "", [""], [SECRET, ""]])
def test_no_secret_or_an_empty_one_is_a_programming_error_not_a_refused_request(secrets: Any) -> None:
    with pytest.raises(ValueError, match="at least one"):
        webhooks.verify(BODY, webhooks.sign(BODY, SECRET, timestamp=NOW), secrets, now=NOW)
    with pytest.raises(ValueError, match="at least one"):
        webhooks.sign(BODY, secrets)


def test_an_event_type_and_statuses_a_newer_server_adds_are_kept_as_strings() -> None:
    body = event(type="order.on_hold")
    body["order"] = {
        **body["order"],
        "status": "ON_HOLD",
        "cancellation": {"status": "pending", "reason": None},
    }

    parsed = webhooks.parse(encoded(body))

    assert parsed.type == "order.on_hold"
    assert not parsed.known_type
    assert parsed.order.status == "ON_HOLD"
    assert parsed.order.cancellation is not None and parsed.order.cancellation.status == "pending"


def test_known_types_and_statuses_are_enum_members_and_compare_equal_to_their_strings() -> None:
    body = event(type="order.cancellation_refused")
    body["order"] = {**body["order"], "cancellation": {"status": "refused", "reason": "customer"}}

    parsed = webhooks.parse(encoded(body))

    assert parsed.known_type
    assert parsed.type is WebhookEventType.ORDER_CANCELLATION_REFUSED
    assert parsed.type == "order.cancellation_refused"
    assert parsed.order.cancellation is not None
    assert parsed.order.cancellation.status is Cancellation.REFUSED
    assert parsed.order.cancellation.reason == "customer"


def test_fields_a_newer_server_adds_are_accepted() -> None:
    body = event(priority=2, trace={"id": "x"})
    body["order"] = {
        **body["order"],
        "carrier": "dhl",
        "amount": {"amount_minor": 1, "currency": "EUR", "tax": 0},
    }

    parsed = webhooks.verify(
        encoded(body), webhooks.sign(encoded(body), SECRET, timestamp=NOW), SECRET, now=NOW
    )

    assert parsed.order.amount.amount_minor == 1


def test_every_event_type_of_the_contract_is_known() -> None:
    # The shop is told of every carrier step an order reaches (`CARRIER_STEPS`), by its status's name, but
    # the last: that one completes the order.
    steps = {f"order.{step.reached.value.lower()}" for step in CARRIER_STEPS[:-1]}
    assert {t.value for t in WebhookEventType} == {
        "order.placed",
        "order.rejected",
        "order.scheduled",
        *steps,
        "order.completed",
        "order.cancellation_requested",
        "order.cancellation_confirmed",
        "order.cancellation_refused",
        "order.cancelled",
        "order.refunded",
        "order.refund_failed",
    }


def test_an_event_is_immutable() -> None:
    parsed: WebhookEvent = webhooks.parse(BODY)

    with pytest.raises(ValueError, match="frozen"):
        parsed.sequence = 4  # type: ignore[misc]
