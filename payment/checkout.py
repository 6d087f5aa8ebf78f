"""The checkout use case: charge once per Idempotency-Key, then emit PaymentCompleted or PaymentFailed.

Sequence, and why:
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
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common import pg
from common.config import Service
from common.db import reading
from common.errors import Conflict
from common.events import Envelope, new_envelope
from common.events.payment import PaymentCompleted, PaymentFailed
from common.events.values import Address, Currency, Money, OrderId, OrderLine
from common.messaging.unit_of_work import UnitOfWork
from common.params import PrintableText
from common.retry import Backoff
from payment import models
from payment.domain import (
    ChargeOutcome,
    KeyUse,
    PaymentStatus,
    idempotency_key_use,
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


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"


class OrderIdTaken(Conflict):
    code = "order_id_taken"


async def checkout(
    engine: AsyncEngine,
    unit_of_work: Callable[[], UnitOfWork],
    gateway: PaymentGateway,
    *,
    idempotency_key: str,
    request: CheckoutRequest,
    order_url: str,
) -> CheckoutAnswer:
    """Charge once for `idempotency_key` and start the saga; a replay of the key gets the first answer.
    Raises IdempotencyConflict (the key came with another body) or OrderIdTaken."""
    body = request.model_dump(mode="json", exclude_none=True)
    attempt = await _record_attempt(
        engine, idempotency_key, request_fingerprint(body), request.order_id or uuid.uuid4().hex, request
    )
    if attempt.answered is not None:
        return attempt.answered
    charge = await _charge(gateway, attempt.payment_id, request)
    return await _finish(unit_of_work, idempotency_key, attempt, request, charge, order_url)


# The key, and the payment only if the key is new, in one statement. It answers whether the key was new
# and whether the payment was created (not when the order id already has a payment).
_RECORD_ATTEMPT = (
    f"WITH new_key AS (INSERT INTO {models.checkout_requests.name} (idempotency_key, request_fingerprint,"
    " order_id) VALUES (%(key)s, %(fingerprint)s, %(order_id)s) ON CONFLICT DO NOTHING"
    " RETURNING idempotency_key),"
    f" new_payment AS (INSERT INTO {models.payments.name} (payment_id, order_id, customer_id, amount_minor,"
    " currency, payment_method, status, lines, shipping_address)"
    " SELECT %(payment_id)s, %(order_id)s, %(customer_id)s, %(amount_minor)s, %(currency)s,"
    " %(payment_method)s, %(status)s, %(lines)s::json, %(shipping_address)s::json"
    " WHERE EXISTS (SELECT FROM new_key) ON CONFLICT (order_id) DO NOTHING RETURNING payment_id)"
    " SELECT EXISTS (SELECT FROM new_key), EXISTS (SELECT FROM new_payment)"
)


async def _record_attempt(
    engine: AsyncEngine, key: str, fingerprint: str, order_id: str, request: CheckoutRequest
) -> Attempt:
    keys, payments = models.checkout_requests, models.payments
    payment_id = uuid.uuid4()
    async with engine.begin() as conn:
        [(key_is_new, created)] = await pg.fetch_all(
            conn,
            _RECORD_ATTEMPT,
            {
                "key": key,
                "fingerprint": fingerprint,
                "order_id": order_id,
                "payment_id": payment_id,
                "customer_id": request.customer_id,
                "amount_minor": request.total_minor,
                "currency": request.currency,
                "payment_method": request.payment_method,
                "status": PaymentStatus.PENDING.value,
                "lines": json.dumps([line.model_dump(mode="json") for line in request.lines]),
                "shipping_address": request.shipping_address.model_dump_json(),
            },
        )
        if not key_is_new:
            stored = (await conn.execute(select(keys).where(keys.c.idempotency_key == key))).one()
            if idempotency_key_use(stored.request_fingerprint, fingerprint) is KeyUse.CONFLICT:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with a different request body"
                )
            payment_id = await conn.scalar(
                select(payments.c.payment_id).where(payments.c.order_id == stored.order_id)
            )
            answered = (
                CheckoutAnswer(stored.response_status, stored.response_body)
                if stored.response_body is not None
                else None
            )
            return Attempt(payment_id, stored.order_id, answered)
        if not created:
            raise OrderIdTaken(f"order {order_id} already has a payment (under another Idempotency-Key)")
    return Attempt(payment_id, order_id)


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
    unit_of_work: Callable[[], UnitOfWork],
    key: str,
    attempt: Attempt,
    request: CheckoutRequest,
    charge: Charge,
    order_url: str,
) -> CheckoutAnswer:
    keys, payments = models.checkout_requests, models.payments
    status = settle(charge.outcome)
    answer = CheckoutAnswer(
        202,
        {
            "order_id": attempt.order_id,
            "payment_id": str(attempt.payment_id),
            "status": status.value,
            "decline_reason": charge.reason,
            "order_url": f"{order_url}/orders/{attempt.order_id}",
        },
    )
    async with unit_of_work() as work:
        # Only out of PENDING: of two concurrent replays, one moves it and emits the event.
        moved = await pg.fetch_all(
            work.conn,
            f"UPDATE {payments.name} SET status = %s, gateway_reference = %s, failure_reason = %s,"
            f" updated_at = now() WHERE payment_id = %s AND status = '{PaymentStatus.PENDING.value}'"
            " RETURNING payment_id",
            (status.value, charge.reference, charge.reason, attempt.payment_id),
        )
        if not moved:
            # A concurrent replay of the same request finished first and answered already.
            stored = (await work.conn.execute(select(keys).where(keys.c.idempotency_key == key))).one()
            return CheckoutAnswer(stored.response_status or 202, stored.response_body or answer.body)
        # The event and the stored answer: disjoint writes, one statement (the checkout is the hot path).
        event = _event(attempt, request, charge)
        await pg.execute_together(
            work.conn,
            [
                work.emit_as_statement([event]),
                pg.Statement(
                    f"UPDATE {keys.name} SET response_status = %s, response_body = %s::json"
                    " WHERE idempotency_key = %s",
                    (answer.status, json.dumps(answer.body), key),
                ),
            ],
        )
    return answer


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
    engine: AsyncEngine,
    unit_of_work: Callable[[], UnitOfWork],
    gateway: PaymentGateway,
    *,
    older_than: timedelta,
    order_url: str,
    limit: int = 20,
) -> int:
    """Finish checkouts left PENDING by a crash between recording the payment and recording its outcome.

    The gateway is asked again with the payment id as idempotency key, so a charge it already made is
    answered, not repeated; `_finish` moves the payment out of PENDING only once, whoever gets there first.
    """
    payments, keys = models.payments, models.checkout_requests
    async with reading(engine) as conn:
        stuck = (
            await conn.execute(
                select(payments, keys.c.idempotency_key)
                .join(keys, keys.c.order_id == payments.c.order_id)
                .where(
                    payments.c.status == PaymentStatus.PENDING,
                    payments.c.created_at < func.now() - older_than,
                )
                .order_by(payments.c.created_at)
                .limit(limit)
            )
        ).all()
    for row in stuck:
        request = CheckoutRequest(
            order_id=row.order_id,
            customer_id=row.customer_id,
            lines=row.lines,
            currency=row.currency,
            payment_method=row.payment_method,
            shipping_address=row.shipping_address,
        )
        charge = await _charge(gateway, row.payment_id, request)
        attempt = Attempt(row.payment_id, row.order_id)
        await _finish(unit_of_work, row.idempotency_key, attempt, request, charge, order_url)
    return len(stuck)
