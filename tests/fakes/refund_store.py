"""An in-memory `RefundStore` for the refund worker's unit tests: the same rules as the SQL one
(`payment/refund_store.py`), no database, and a clock the test moves (`now`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from common.events import Envelope
from payment.domain import PaymentStatus, RefundStatus
from payment.refunds import ClaimedRefund


@dataclass
class StoredPayment:
    status: PaymentStatus
    gateway_reference: str | None


@dataclass
class StoredRefund:
    refund_id: uuid.UUID
    payment_id: uuid.UUID
    order_id: str
    amount_minor: int
    currency: str
    next_attempt_at: datetime
    status: RefundStatus = RefundStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    retried_by: str | None = None
    trace_context: str | None = None


@dataclass
class FakeRefundStore:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    payments: dict[uuid.UUID, StoredPayment] = field(default_factory=dict)
    refunds: dict[uuid.UUID, StoredRefund] = field(default_factory=dict)
    events: list[Envelope] = field(default_factory=list)  # the outbox

    def queue_refund(
        self, *, order_id: str = "acme:o-1", amount_minor: int = 1250, gateway_reference: str = "ch_1"
    ) -> StoredRefund:
        """A captured payment and its refund, PENDING and due now (what a cancel's handler queues)."""
        payment_id = uuid.uuid4()
        self.payments[payment_id] = StoredPayment(PaymentStatus.CAPTURED, gateway_reference)
        refund = StoredRefund(uuid.uuid4(), payment_id, order_id, amount_minor, "EUR", self.now)
        self.refunds[refund.refund_id] = refund
        return refund

    async def claim_due(self, limit: int, lease: timedelta) -> list[ClaimedRefund]:
        due = sorted(
            (
                r
                for r in self.refunds.values()
                if r.status is RefundStatus.PENDING and r.next_attempt_at <= self.now
            ),
            key=lambda r: r.next_attempt_at,
        )[:limit]
        claimed = []
        for refund in due:
            refund.attempts += 1
            refund.next_attempt_at = self.now + lease
            claimed.append(
                ClaimedRefund(
                    refund.refund_id,
                    refund.payment_id,
                    refund.order_id,
                    refund.amount_minor,
                    refund.currency,
                    refund.attempts,
                    refund.trace_context,
                )
            )
        return claimed

    async def charge_reference(self, payment_id: uuid.UUID) -> str | None:
        payment = self.payments.get(payment_id)
        return payment.gateway_reference if payment is not None else None

    async def record_refunded(self, refund: ClaimedRefund, event: Envelope) -> bool:
        return self._record(refund, RefundStatus.SUCCEEDED, None, PaymentStatus.REFUNDED, event)

    async def record_given_up(self, refund: ClaimedRefund, error: str, event: Envelope) -> bool:
        return self._record(refund, RefundStatus.FAILED, error, PaymentStatus.REFUND_FAILED, event)

    def _record(
        self,
        refund: ClaimedRefund,
        status: RefundStatus,
        error: str | None,
        payment_status: PaymentStatus,
        event: Envelope,
    ) -> bool:
        stored = self.refunds[refund.refund_id]
        if stored.status is not RefundStatus.PENDING:
            return False  # another worker recorded it first
        stored.status, stored.last_error = status, error
        self.payments[refund.payment_id].status = payment_status
        self.events.append(event)
        return True

    async def schedule_retry(self, refund: ClaimedRefund, error: str, delay: timedelta) -> None:
        stored = self.refunds[refund.refund_id]
        stored.last_error, stored.next_attempt_at = error, self.now + delay

    async def requeue_failed(self, order_id: str, by: str) -> uuid.UUID | None:
        for refund in self.refunds.values():
            if refund.order_id == order_id and refund.status is RefundStatus.FAILED:
                refund.status, refund.attempts, refund.next_attempt_at = RefundStatus.PENDING, 0, self.now
                refund.retried_by = by
                return refund.refund_id
        return None
