"""The refund worker: calls the gateway for queued refunds, retries with backoff, never stops silently.

A refund is claimed by pushing its `next_attempt_at` past a lease (with SKIP LOCKED, so two workers
never claim the same one), the gateway is called outside any transaction with the refund id as its
idempotency key, and the result is recorded with the event in one transaction. If the worker dies
mid-call, the lease expires and the call is repeated; the gateway's idempotency makes that safe.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Service
from common.db import autocommit, reading
from common.errors import Conflict
from common.events import new_envelope
from common.events.payment import PaymentRefunded, PaymentRefundFailed
from common.events.values import Money
from common.messaging.unit_of_work import UnitOfWork
from common.tenancy import order_id_of
from common.tracing import Tracing
from payment import models
from payment.domain import GiveUpRefund, PaymentStatus, RefundStatus, after_refund_failure
from payment.gateway import GatewayRefused, GatewayTimeout, PaymentGateway

log = logging.getLogger(__name__)


class RefundWorker:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        unit_of_work: Callable[[], UnitOfWork],
        gateway: PaymentGateway,
        max_attempts: int,
        lease: timedelta,
        tracing: Tracing | None = None,
    ) -> None:
        self._engine = engine
        self._tracing = tracing or Tracing.off()
        self._lease = lease
        self._unit_of_work = unit_of_work
        self._gateway = gateway
        self._max_attempts = max_attempts
        # Runs a round soon (the service's `on_wake`): a retry this worker schedules is started when it
        # comes due, so the worker's timer only has to catch what other workers and expired leases leave.
        self.wake: Callable[[], None] = lambda: None

    async def run_due(self, limit: int = 20) -> int:
        """Attempt every refund that is due; returns how many were attempted."""
        claimed = await self._claim(limit)
        await asyncio.gather(*(self._attempt(refund) for refund in claimed))
        return len(claimed)

    async def _claim(self, limit: int) -> list[Any]:
        refunds = models.refunds
        due = (
            select(refunds.c.refund_id)
            .where(refunds.c.status == RefundStatus.PENDING, refunds.c.next_attempt_at <= func.now())
            .order_by(refunds.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        # One statement in autocommit, where BEGIN, the claim and COMMIT were three round trips: the
        # worker runs it every second even when nothing is queued. A single UPDATE is atomic on its own,
        # and SKIP LOCKED keeps two workers from claiming the same refund.
        async with autocommit(self._engine) as conn:
            rows = await conn.execute(
                update(refunds)
                .where(refunds.c.refund_id.in_(due.scalar_subquery()))
                .values(
                    attempts=refunds.c.attempts + 1,
                    next_attempt_at=func.now() + self._lease,
                    updated_at=func.now(),
                )
                .returning(refunds)
            )
            return list(rows.all())

    async def _attempt(self, refund: Any) -> None:
        """One call to the gateway and its outcome, in the trace of the cancel that queued the refund."""
        with self._tracing.span(
            "refund",
            parent=refund.trace_context,
            attributes={"saga.order_id": refund.order_id, "saga.refund_attempt": refund.attempts},
        ):
            await self._attempt_traced(refund)

    async def _attempt_traced(self, refund: Any) -> None:
        async with reading(self._engine) as conn:
            reference = await conn.scalar(
                select(models.payments.c.gateway_reference).where(
                    models.payments.c.payment_id == refund.payment_id
                )
            )
        try:
            await self._gateway.refund(
                idempotency_key=str(refund.refund_id),
                charge_reference=reference or "",
                amount_minor=refund.amount_minor,
                currency=refund.currency,
            )
        except (GatewayRefused, GatewayTimeout) as error:
            await self._record_failure(refund, f"{type(error).__name__}: {error}")
            return
        await self._record_success(refund)

    async def _record_success(self, refund: Any) -> None:
        refunds, payments = models.refunds, models.payments
        async with self._unit_of_work() as work:
            conn = work.conn
            moved = await conn.scalar(
                update(refunds)
                .where(refunds.c.refund_id == refund.refund_id, refunds.c.status == RefundStatus.PENDING)
                .values(status=RefundStatus.SUCCEEDED, last_error=None, updated_at=func.now())
                .returning(refunds.c.refund_id)
            )
            if moved is None:
                return  # another worker recorded it first
            await conn.execute(
                update(payments)
                .where(payments.c.payment_id == refund.payment_id)
                .values(status=PaymentStatus.REFUNDED, updated_at=func.now())
            )
            payload = PaymentRefunded(
                payment_id=refund.payment_id, refund_id=refund.refund_id, amount=_money(refund)
            )
            work.emit([_envelope(refund, payload)])

    async def _record_failure(self, refund: Any, error: str) -> None:
        refunds, payments = models.refunds, models.payments
        decision = after_refund_failure(refund.attempts, self._max_attempts)
        async with self._unit_of_work() as work:
            conn = work.conn
            if isinstance(decision, GiveUpRefund):
                moved = await conn.scalar(
                    update(refunds)
                    .where(refunds.c.refund_id == refund.refund_id, refunds.c.status == RefundStatus.PENDING)
                    .values(status=RefundStatus.FAILED, last_error=error, updated_at=func.now())
                    .returning(refunds.c.refund_id)
                )
                if moved is None:
                    return
                await conn.execute(
                    update(payments)
                    .where(payments.c.payment_id == refund.payment_id)
                    .values(status=PaymentStatus.REFUND_FAILED, updated_at=func.now())
                )
                payload = PaymentRefundFailed(
                    payment_id=refund.payment_id,
                    refund_id=refund.refund_id,
                    amount=_money(refund),
                    reason=error,
                    attempts=refund.attempts,
                )
                work.emit([_envelope(refund, payload)])
                log.error(
                    "refund %s for order %s failed for good: %s", refund.refund_id, refund.order_id, error
                )
            else:
                await conn.execute(
                    update(refunds)
                    .where(refunds.c.refund_id == refund.refund_id)
                    .values(
                        last_error=error,
                        next_attempt_at=func.now() + timedelta(seconds=decision.delay_seconds),
                        updated_at=func.now(),
                    )
                )
        if not isinstance(decision, GiveUpRefund):
            asyncio.get_running_loop().call_later(decision.delay_seconds, self.wake)


class NoFailedRefund(Conflict):
    code = "no_failed_refund"


async def retry_refund(engine: AsyncEngine, order_id: str, *, by: str) -> uuid.UUID:
    """Operator action, by the caller named `by` (the refund records who): put the order's FAILED refund
    back in the queue with a fresh attempt budget; returns its id. Raises NoFailedRefund if the order has
    no refund in state FAILED (or no payment)."""
    refunds = models.refunds
    async with engine.begin() as conn:
        refund_id: uuid.UUID | None = await conn.scalar(
            update(refunds)
            .where(refunds.c.order_id == order_id, refunds.c.status == RefundStatus.FAILED)
            .values(
                status=RefundStatus.PENDING,
                attempts=0,
                next_attempt_at=func.now(),
                updated_at=func.now(),
                retried_by=by,
            )
            .returning(refunds.c.refund_id)
        )
    if refund_id is None:
        raise NoFailedRefund(f"order {order_id_of(order_id)} has no refund in state FAILED")
    return refund_id


def _money(refund: Any) -> Money:
    return Money(amount_minor=refund.amount_minor, currency=refund.currency)


def _envelope(refund: Any, payload: PaymentRefunded | PaymentRefundFailed) -> Any:
    return new_envelope(payload, order_id=refund.order_id, producer=Service.PAYMENT.value)
