"""Payment's refunds in PostgreSQL: the SQL behind the refund worker's store port (`RefundStore`).

The statements are the worker's as they were: the claim is one UPDATE in autocommit (SKIP LOCKED keeps
two workers off the same refund), the charge's reference one read, and each outcome one transaction of
the unit of work (the refund moved only if still PENDING, then its payment, then the event).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import autocommit, reading
from common.events import Envelope
from common.messaging.unit_of_work import UnitOfWork
from payment import models
from payment.domain import PaymentStatus, RefundStatus
from payment.refunds import ClaimedRefund


class SqlRefundStore:
    def __init__(self, engine: AsyncEngine, unit_of_work: Callable[[], UnitOfWork]) -> None:
        self._engine = engine
        self._unit_of_work = unit_of_work

    async def claim_due(self, limit: int, lease: timedelta) -> list[ClaimedRefund]:
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
                    next_attempt_at=func.now() + lease,
                    updated_at=func.now(),
                )
                .returning(refunds)
            )
            return [_claimed(row) for row in rows.all()]

    async def charge_reference(self, payment_id: uuid.UUID) -> str | None:
        async with reading(self._engine) as conn:
            reference: str | None = await conn.scalar(
                select(models.payments.c.gateway_reference).where(models.payments.c.payment_id == payment_id)
            )
        return reference

    async def record_refunded(self, refund: ClaimedRefund, event: Envelope) -> bool:
        return await self._record_outcome(refund, RefundStatus.SUCCEEDED, PaymentStatus.REFUNDED, None, event)

    async def record_given_up(self, refund: ClaimedRefund, error: str, event: Envelope) -> bool:
        return await self._record_outcome(
            refund, RefundStatus.FAILED, PaymentStatus.REFUND_FAILED, error, event
        )

    async def _record_outcome(
        self,
        refund: ClaimedRefund,
        outcome: RefundStatus,
        payment_status: PaymentStatus,
        error: str | None,
        event: Envelope,
    ) -> bool:
        """The refund leaves PENDING for `outcome`, its payment takes `payment_status`, and `event` goes
        out with them; False (nothing written) when another worker recorded the refund first."""
        refunds, payments = models.refunds, models.payments
        async with self._unit_of_work() as work:
            conn = work.conn
            moved = await conn.scalar(
                update(refunds)
                .where(refunds.c.refund_id == refund.refund_id, refunds.c.status == RefundStatus.PENDING)
                .values(status=outcome, last_error=error, updated_at=func.now())
                .returning(refunds.c.refund_id)
            )
            if moved is None:
                return False
            await conn.execute(
                update(payments)
                .where(payments.c.payment_id == refund.payment_id)
                .values(status=payment_status, updated_at=func.now())
            )
            work.emit([event])
        return True

    async def schedule_retry(self, refund: ClaimedRefund, error: str, delay: timedelta) -> None:
        refunds = models.refunds
        async with self._unit_of_work() as work:
            await work.conn.execute(
                update(refunds)
                .where(refunds.c.refund_id == refund.refund_id)
                .values(last_error=error, next_attempt_at=func.now() + delay, updated_at=func.now())
            )

    async def requeue_failed(self, order_id: str, by: str) -> uuid.UUID | None:
        refunds = models.refunds
        async with self._engine.begin() as conn:
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
        return refund_id


def _claimed(row: Any) -> ClaimedRefund:
    return ClaimedRefund(
        refund_id=row.refund_id,
        payment_id=row.payment_id,
        order_id=row.order_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        attempts=row.attempts,
        trace_context=row.trace_context,
    )
