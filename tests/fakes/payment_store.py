"""An in-memory `PaymentStore` for the checkout's unit tests: the same rules as the SQL one, no database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from common.events import Envelope
from payment.checkout import (
    Attempt,
    CheckoutAnswer,
    CheckoutRequest,
    IdempotencyConflict,
    InterruptedCheckout,
    OrderIdTaken,
)
from payment.domain import KeyUse, PaymentStatus, idempotency_key_use


@dataclass
class _Key:
    fingerprint: str
    order_id: str
    answer: CheckoutAnswer | None = None


@dataclass
class FakePaymentStore:
    keys: dict[str, _Key] = field(default_factory=dict)
    payments: dict[str, tuple[uuid.UUID, PaymentStatus]] = field(default_factory=dict)  # by order id
    requests: dict[str, CheckoutRequest] = field(default_factory=dict)  # by order id
    events: list[Envelope] = field(default_factory=list)  # the outbox

    async def record_attempt(
        self, key: str, fingerprint: str, order_id: str, request: CheckoutRequest
    ) -> Attempt:
        if key in self.keys:
            known = self.keys[key]
            if idempotency_key_use(known.fingerprint, fingerprint) is KeyUse.CONFLICT:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with a different request body"
                )
            return Attempt(self.payments[known.order_id][0], known.order_id, known.answer)
        if order_id in self.payments:
            raise OrderIdTaken(f"order {order_id} already has a payment (under another Idempotency-Key)")
        self.keys[key] = _Key(fingerprint, order_id)
        self.payments[order_id] = (uuid.uuid4(), PaymentStatus.PENDING)
        self.requests[order_id] = request
        return Attempt(self.payments[order_id][0], order_id)

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
        payment_id, current = self.payments[attempt.order_id]
        if current is not PaymentStatus.PENDING:
            stored = self.keys[key].answer
            assert stored is not None
            return stored
        self.payments[attempt.order_id] = (payment_id, status)
        self.events.append(event)
        self.keys[key].answer = answer
        return answer

    async def interrupted(self, older_than: timedelta, limit: int) -> list[InterruptedCheckout]:
        pending = [
            InterruptedCheckout(
                key, Attempt(self.payments[k.order_id][0], k.order_id), self.requests[k.order_id]
            )
            for key, k in self.keys.items()
            if self.payments[k.order_id][1] is PaymentStatus.PENDING
        ]
        return pending[:limit]
