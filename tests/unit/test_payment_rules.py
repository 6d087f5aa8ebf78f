"""Payment's pure rules: idempotency keys, totals, what is refundable and how refunds are retried."""

from __future__ import annotations

import pytest

from payment.domain import (
    ChargeOutcome,
    GiveUpRefund,
    KeyUse,
    PaymentStatus,
    RetryRefund,
    after_refund_failure,
    idempotency_key_use,
    order_total,
    refundable,
    request_fingerprint,
    settle,
)


@pytest.mark.parametrize(
    ("stored", "current", "expected"),
    [
        (None, "abc", KeyUse.NEW),
        ("abc", "abc", KeyUse.REPLAY),
        ("abc", "xyz", KeyUse.CONFLICT),
    ],
)
def test_an_idempotency_key_is_bound_to_its_first_body(
    stored: str | None, current: str, expected: KeyUse
) -> None:
    assert idempotency_key_use(stored, current) is expected


def test_fingerprints_ignore_key_order_but_not_values() -> None:
    assert request_fingerprint({"a": 1, "b": [1, 2]}) == request_fingerprint({"b": [1, 2], "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})


@pytest.mark.parametrize(
    ("lines", "total"),
    [([], 0), ([(1, 1999)], 1999), ([(3, 333), (1, 1)], 1000), ([(10_000, 99_999_999)], 999_999_990_000)],
)
def test_order_total_is_exact_integer_arithmetic(lines: list[tuple[int, int]], total: int) -> None:
    assert order_total(lines) == total


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PaymentStatus.CAPTURED, True),
        (PaymentStatus.PENDING, False),
        (PaymentStatus.DECLINED, False),
        (PaymentStatus.FAILED, False),
        (PaymentStatus.REFUNDED, False),
        (PaymentStatus.REFUND_FAILED, False),
    ],
)
def test_only_a_captured_charge_is_refundable(status: PaymentStatus, expected: bool) -> None:
    assert refundable(status) is expected


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "expected"),
    [
        (1, 5, RetryRefund(0.5)),
        (2, 5, RetryRefund(1.0)),
        (4, 5, RetryRefund(4.0)),
        (5, 5, GiveUpRefund("refund failed 5 times")),
        (9, 5, GiveUpRefund("refund failed 9 times")),
        (20, 30, RetryRefund(60.0)),
    ],
)
def test_failed_refunds_back_off_then_give_up_visibly(
    attempts: int, max_attempts: int, expected: RetryRefund | GiveUpRefund
) -> None:
    assert after_refund_failure(attempts, max_attempts) == expected


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (ChargeOutcome.APPROVED, PaymentStatus.CAPTURED),
        (ChargeOutcome.DECLINED, PaymentStatus.DECLINED),
        (ChargeOutcome.UNREACHABLE, PaymentStatus.FAILED),  # nothing charged, and not the card's fault
    ],
)
def test_a_pending_payment_settles_by_what_the_gateway_did(
    outcome: ChargeOutcome, status: PaymentStatus
) -> None:
    assert settle(outcome) is status
