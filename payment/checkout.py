"""The checkout use case: charge once per Idempotency-Key, then emit PaymentCompleted or PaymentFailed.

Sequence, and why (the records are kept by a `PaymentStore`: PostgreSQL in `payment/payment_store.py`):
1. One transaction records the key (with a fingerprint of the body) and a PENDING payment. A second
   request with the key finds it: a different body is a conflict, the same body is a replay.
2. The gateway is called with the payment id as its idempotency key — outside any transaction, since it
   may take seconds. If we crash here, the replay of the request calls it again with the same key and
   the provider answers the first result: the customer is never charged twice.
3. One unit of work moves the payment out of PENDING (`payment.domain.settle`; only if it is still
   PENDING, so two concurrent replays emit one event), writes the event to the outbox and stores the
   answer for later replays; the relay is woken after it commits.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.config import Service
from common.errors import Conflict
from common.events import Envelope, new_envelope
from common.events.payment import PaymentCompleted, PaymentFailed
from common.events.values import Address, Currency, Money, OrderId, OrderLine
from common.params import PrintableText
from common.retry import Backoff
from common.tenancy import order_id_of, saga_id
from payment.domain import (
    ChargeOutcome,
    PaymentStatus,
    order_total,
    request_fingerprint,
    settle,
)
from payment.gateway import GatewayRefused, GatewayTimeout, PaymentGateway

_CHARGE_ATTEMPTS = 2
GATEWAY_TIMEOUT = "gateway_timeout"  # the reason a payment FAILED: the gateway never answered


# Bounds that keep any valid cart's total (100 lines of 10,000 units) within PostgreSQL's bigint.
MAX_UNIT_PRICE_MINOR = 10**12
MAX_TOTAL_MINOR = 100 * 10_000 * MAX_UNIT_PRICE_MINOR


class CheckoutLine(OrderLine):
    """A cart line as the shop sends it: a unit price the total can hold."""

    unit_price_minor: int = Field(ge=0, le=MAX_UNIT_PRICE_MINOR)


class ShippingAddress(Address):
    """An address as the shop sends it: printable text that every store on the saga's way accepts."""

    name: PrintableText = Field(min_length=1, max_length=200)
    line1: PrintableText = Field(min_length=1, max_length=200)
    line2: PrintableText | None = Field(default=None, max_length=200)
    city: PrintableText = Field(min_length=1, max_length=100)
    postal_code: PrintableText = Field(min_length=1, max_length=20)


class CheckoutRequest(BaseModel):
    """What the shop sends to start a saga."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: OrderId | None = Field(
        default=None, description="your own id for the order; generated if absent"
    )
    customer_id: PrintableText = Field(min_length=1, max_length=64)
    lines: tuple[CheckoutLine, ...] = Field(min_length=1, max_length=100)
    currency: Currency
    payment_method: PrintableText = Field(
        min_length=1, max_length=64, description="card token, e.g. tok_visa"
    )
    shipping_address: ShippingAddress
    amount_minor: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TOTAL_MINOR,
        description="if given, must equal the sum of the lines (else 422)",
    )

    @model_validator(mode="after")
    def _amount_matches_lines(self) -> CheckoutRequest:
        if self.amount_minor is not None and self.amount_minor != self.total_minor:
            raise ValueError(
                f"amount_minor {self.amount_minor} does not equal the sum of the lines {self.total_minor}"
            )
        return self

    @property
    def total_minor(self) -> int:
        return order_total([(line.quantity, line.unit_price_minor) for line in self.lines])


@dataclass(frozen=True)
class CheckoutAnswer:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """A checkout as recorded before the charge: new (charge it), or a replay of an answered one."""

    payment_id: uuid.UUID
    order_id: str
    answered: CheckoutAnswer | None = None  # what an earlier request with the same key was answered


@dataclass(frozen=True)
class Charge:
    """The gateway's verdict on a charge."""

    outcome: ChargeOutcome
    reference: str | None = None
    reason: str | None = None  # why it was declined or failed


@dataclass(frozen=True)
class InterruptedCheckout:
    """A checkout left PENDING by a crash between the charge and its record."""

    key: str
    attempt: Attempt
    request: CheckoutRequest


class PaymentStore(Protocol):
    """Where checkouts are recorded (`payment/payment_store.py` in PostgreSQL; a fake in the unit tests)."""

    async def record_attempt(
        self, key: str, fingerprint: str, order_id: str, request: CheckoutRequest
    ) -> Attempt:
        """Bind the key to the body and record a PENDING payment, or find the key's earlier attempt.
        Raises IdempotencyConflict (the key came with another body) or OrderIdTaken."""

    async def settle(
        self,
        key: str,
        attempt: Attempt,
        status: PaymentStatus,
        gateway_reference: str | None,
        reason: str | None,
        event: Envelope,
        answer: CheckoutAnswer,
    ) -> CheckoutAnswer:
        """Move the payment out of PENDING with its event and the answer kept for replays; if a concurrent
        replay did it first, return the answer that one kept (and emit nothing)."""

    async def interrupted(self, older_than: timedelta, limit: int) -> list[InterruptedCheckout]:
        """Checkouts still PENDING after `older_than`, oldest first."""


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"


class OrderIdTaken(Conflict):
    code = "order_id_taken"


async def checkout(
    store: PaymentStore,
    gateway: PaymentGateway,
    *,
    owner: str,
    idempotency_key: str,
    request: CheckoutRequest,
    order_url: str,
) -> CheckoutAnswer:
    """Charge once for `idempotency_key` and start `owner`'s saga (the order id is the shop's own:
    generated when the request names none); a replay of the key gets the first answer.
    Raises IdempotencyConflict (the key came with another body) or OrderIdTaken (this shop already
    used the order id)."""
    body = request.model_dump(mode="json", exclude_none=True)
    saga = saga_id(owner, request.order_id or uuid.uuid4().hex)
    attempt = await store.record_attempt(idempotency_key, request_fingerprint(body), saga, request)
    if attempt.answered is not None:
        return attempt.answered
    charge = await _charge(gateway, attempt.payment_id, request)
    return await _finish(store, idempotency_key, attempt, request, charge, order_url)


async def _charge(gateway: PaymentGateway, payment_id: uuid.UUID, request: CheckoutRequest) -> Charge:
    """Charge with the payment id as the gateway's idempotency key; a timeout is retried once, a refusal
    is a decline, and no answer at all leaves nothing charged."""
    backoff = Backoff(initial=0.05, maximum=0.5)
    for attempt in range(1, _CHARGE_ATTEMPTS + 1):
        try:
            result = await gateway.charge(
                idempotency_key=str(payment_id),
                amount_minor=request.total_minor,
                currency=request.currency,
                payment_method=request.payment_method,
            )
        except GatewayRefused as exc:
            return Charge(ChargeOutcome.DECLINED, reason=f"refused: {exc}")
        except GatewayTimeout:
            if attempt == _CHARGE_ATTEMPTS:
                break
            await asyncio.sleep(backoff.next_delay())
            continue
        if result.approved:
            return Charge(ChargeOutcome.APPROVED, reference=result.reference)
        return Charge(ChargeOutcome.DECLINED, reason=result.decline_reason or "declined")
    return Charge(ChargeOutcome.UNREACHABLE, reason=GATEWAY_TIMEOUT)


async def _finish(
    store: PaymentStore,
    key: str,
    attempt: Attempt,
    request: CheckoutRequest,
    charge: Charge,
    order_url: str,
) -> CheckoutAnswer:
    """Settle the payment by the charge's outcome, emit its event and keep the answer for replays."""
    status = settle(charge.outcome)
    order_id = order_id_of(attempt.order_id)  # the shop's own id: the one it polls with
    answer = CheckoutAnswer(
        202,
        {
            "order_id": order_id,
            "payment_id": str(attempt.payment_id),
            "status": status.value,
            "decline_reason": charge.reason,
            "order_url": f"{order_url}/orders/{order_id}",
        },
    )
    event = _event(attempt, request, charge)
    return await store.settle(key, attempt, status, charge.reference, charge.reason, event, answer)


def _event(attempt: Attempt, request: CheckoutRequest, charge: Charge) -> Envelope:
    amount = Money(amount_minor=request.total_minor, currency=request.currency)
    payload: PaymentCompleted | PaymentFailed
    if charge.outcome is ChargeOutcome.APPROVED:
        payload = PaymentCompleted(
            payment_id=attempt.payment_id,
            customer_id=request.customer_id,
            amount=amount,
            lines=request.lines,
            shipping_address=request.shipping_address,
        )
    else:
        payload = PaymentFailed(
            payment_id=attempt.payment_id,
            customer_id=request.customer_id,
            amount=amount,
            reason=charge.reason or "declined",
        )
    return new_envelope(payload, order_id=attempt.order_id, producer=Service.PAYMENT.value)


async def recover_pending(
    store: PaymentStore, gateway: PaymentGateway, *, older_than: timedelta, order_url: str, limit: int = 20
) -> int:
    """Finish checkouts left PENDING by a crash between recording the payment and recording its outcome.

    The gateway is asked again with the payment id as idempotency key, so a charge it already made is
    answered, not repeated; the store moves the payment out of PENDING only once, whoever gets there first.
    """
    stuck = await store.interrupted(older_than, limit)
    for checkout in stuck:
        charge = await _charge(gateway, checkout.attempt.payment_id, checkout.request)
        await _finish(store, checkout.key, checkout.attempt, checkout.request, charge, order_url)
    return len(stuck)
