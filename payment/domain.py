"""Pure payment rules: request fingerprints, idempotency decisions, refund eligibility and retries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PaymentStatus(StrEnum):
    PENDING = "PENDING"  # recorded, gateway not answered yet
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"  # gateway unreachable: nothing charged
    REFUNDED = "REFUNDED"
    REFUND_FAILED = "REFUND_FAILED"


class ChargeOutcome(StrEnum):
    """What the gateway did with a charge."""

    APPROVED = "approved"
    DECLINED = "declined"  # it answered no (a declined card, a refusal)
    UNREACHABLE = "unreachable"  # no answer after the retries: nothing was charged


def settle(outcome: ChargeOutcome) -> PaymentStatus:
    """A PENDING payment's status once the gateway has answered (or not): only an approved charge is
    CAPTURED; a gateway that never answered FAILS the payment, which is not a decline of the card."""
    return {
        ChargeOutcome.APPROVED: PaymentStatus.CAPTURED,
        ChargeOutcome.DECLINED: PaymentStatus.DECLINED,
        ChargeOutcome.UNREACHABLE: PaymentStatus.FAILED,
    }[outcome]


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class KeyUse(StrEnum):
    NEW = "new"  # first use of the key: charge
    REPLAY = "replay"  # same key, same body: answer as the first time, charge nothing
    CONFLICT = "conflict"  # same key, different body: refuse with 409


def request_fingerprint(body: dict[str, Any]) -> str:
    """A stable digest of a checkout body (key order and spacing do not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key_use(stored_fingerprint: str | None, fingerprint: str) -> KeyUse:
    """An Idempotency-Key is bound to the first body sent with it; reusing it for another body is an error."""
    if stored_fingerprint is None:
        return KeyUse.NEW
    return KeyUse.REPLAY if stored_fingerprint == fingerprint else KeyUse.CONFLICT


def caller_scoped_key(caller: str, idempotency_key: str) -> str:
    """The Idempotency-Key as stored: bound to the caller's name. Another caller sending the same key
    starts its own checkout (and meets the first one's order id, if it names it, as a conflict): it can
    neither read nor replay the first caller's answer. The name survives a rotation of the caller's API
    key; it cannot contain `/`, so the pair is unambiguous."""
    return f"{caller}/{idempotency_key}"


def order_total(lines: list[tuple[int, int]]) -> int:
    """Sum of quantity times unit price in minor units; integers only, so no rounding ever happens."""
    return sum(quantity * unit_price for quantity, unit_price in lines)


def refundable(status: PaymentStatus) -> bool:
    """Only a captured charge is refunded; a declined or failed one charged nothing."""
    return status is PaymentStatus.CAPTURED


@dataclass(frozen=True)
class RetryRefund:
    delay_seconds: float


@dataclass(frozen=True)
class GiveUpRefund:
    reason: str


def after_refund_failure(
    attempts: int, max_attempts: int, *, base_delay: float = 0.5, max_delay: float = 60.0
) -> RetryRefund | GiveUpRefund:
    """Retry a refused or timed-out refund with exponential backoff; after `max_attempts` give up, which
    makes the payment REFUND_FAILED — visible, and retryable by an operator."""
    if attempts >= max_attempts:
        return GiveUpRefund(reason=f"refund failed {attempts} times")
    return RetryRefund(delay_seconds=min(max_delay, base_delay * 2 ** (attempts - 1)))
