"""The payment gateway port, and the built-in simulator used by default, in tests and in demos.

The simulator's test cards choose the outcome, so a scenario can be driven from the outside:

| payment_method     | charge            | refund        |
|--------------------|-------------------|---------------|
| `tok_declined`     | declined          | —             |
| `tok_timeout`      | times out         | —             |
| `tok_refund_fails` | approved          | always fails  |
| anything else      | approved          | succeeds      |

Every call carries an idempotency key; the simulator, like a real provider, answers a repeated key with
the first answer and never charges or refunds twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

CARD_DECLINED = "tok_declined"
CARD_TIMEOUT = "tok_timeout"
CARD_REFUND_FAILS = "tok_refund_fails"


class GatewayTimeout(Exception):
    """The provider did not answer in time: the outcome is unknown, retrying with the same key is safe."""


class GatewayRefused(Exception):
    """The provider answered and refused the operation."""


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str | None = None
    decline_reason: str | None = None


class PaymentGateway(Protocol):
    async def charge(
        self, *, idempotency_key: str, amount_minor: int, currency: str, payment_method: str
    ) -> ChargeResult: ...

    async def refund(
        self, *, idempotency_key: str, charge_reference: str, amount_minor: int, currency: str
    ) -> str:
        """Returns the provider's refund reference; raises GatewayRefused or GatewayTimeout."""
        ...


class SimulatorGateway:
    """In-process provider with deterministic test cards (see the module docstring)."""

    def __init__(self, *, timeout_seconds: float) -> None:
        self._timeout_seconds = timeout_seconds
        self._charges: dict[str, ChargeResult] = {}
        self._refunds: dict[str, str] = {}
        self.charge_calls = 0

    async def charge(
        self, *, idempotency_key: str, amount_minor: int, currency: str, payment_method: str
    ) -> ChargeResult:
        self.charge_calls += 1
        if idempotency_key in self._charges:
            return self._charges[idempotency_key]
        if payment_method == CARD_TIMEOUT:
            await asyncio.sleep(self._timeout_seconds)
            raise GatewayTimeout(f"no answer from the provider within {self._timeout_seconds}s")
        if payment_method == CARD_DECLINED:
            result = ChargeResult(approved=False, decline_reason="card_declined")
        else:
            # The reference carries the card's refund behaviour, so it survives a restart of the service.
            suffix = f"_{CARD_REFUND_FAILS}" if payment_method == CARD_REFUND_FAILS else ""
            result = ChargeResult(approved=True, reference=f"sim_ch_{idempotency_key}{suffix}")
        self._charges[idempotency_key] = result
        return result

    async def refund(
        self, *, idempotency_key: str, charge_reference: str, amount_minor: int, currency: str
    ) -> str:
        if idempotency_key in self._refunds:
            return self._refunds[idempotency_key]
        if charge_reference.endswith(CARD_REFUND_FAILS):
            raise GatewayRefused("the provider refused the refund (test card tok_refund_fails)")
        reference = f"sim_re_{idempotency_key}"
        self._refunds[idempotency_key] = reference
        return reference
