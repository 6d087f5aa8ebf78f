"""Payment's answers about payments and refunds, as its OpenAPI document declares them and its views send
them.

Each answer is built in one place: a payment from its row and its refund's (`PaymentAnswer.from_rows`), a
refund from its row (`RefundAnswer.from_row`). The read (`payment/queries.py`) returns these models; the
views send them as they are. (A checkout's answer is kept as it was first sent, for its replays:
`payment/checkout.py`.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import Row

from common.events.values import Money, OrderLine
from common.tenancy import order_id_of, owner_of
from payment.domain import PaymentStatus, RefundStatus


class RefundAnswer(BaseModel):
    refund_id: UUID
    status: RefundStatus
    reason: str
    amount: Money
    attempts: int
    last_error: str | None
    retried_by: str | None = Field(description="the operator who last queued it again after it failed")
    updated_at: datetime

    @staticmethod
    def from_row(row: Row[Any]) -> RefundAnswer:
        """A refund as recorded (a row of `refunds`)."""
        return RefundAnswer(
            refund_id=row.refund_id,
            status=row.status,
            reason=row.reason,
            amount=Money(amount_minor=row.amount_minor, currency=row.currency),
            attempts=row.attempts,
            last_error=row.last_error,
            retried_by=row.retried_by,
            updated_at=row.updated_at,
        )


class PaymentAnswer(BaseModel):
    payment_id: UUID
    order_id: str = Field(description="the order id as its shop knows it")
    owner: str = Field(description="the shop whose order it is (the name of the key of its checkout)")
    customer_id: str
    status: PaymentStatus
    amount: Money
    lines: list[OrderLine] = Field(description="what was bought, as the checkout sent it")
    failure_reason: str | None
    gateway_reference: str | None
    created_at: datetime
    updated_at: datetime
    refund: RefundAnswer | None

    @staticmethod
    def from_rows(payment: Row[Any], refund: Row[Any] | None) -> PaymentAnswer:
        """A payment as recorded (a row of `payments`): its saga id split into the shop's id and the shop,
        with its refund (None: nothing was refunded)."""
        return PaymentAnswer(
            payment_id=payment.payment_id,
            order_id=order_id_of(payment.order_id),
            owner=owner_of(payment.order_id),
            customer_id=payment.customer_id,
            status=payment.status,
            amount=Money(amount_minor=payment.amount_minor, currency=payment.currency),
            lines=payment.lines,
            failure_reason=payment.failure_reason,
            gateway_reference=payment.gateway_reference,
            created_at=payment.created_at,
            updated_at=payment.updated_at,
            refund=None if refund is None else RefundAnswer.from_row(refund),
        )


class RefundQueued(BaseModel):
    order_id: str
    owner: str
    refund_id: UUID
    status: RefundStatus

    @staticmethod
    def of(saga_id: str, refund_id: UUID) -> RefundQueued:
        """A failed refund of the order `saga_id` queued again: PENDING until the refund worker tries."""
        return RefundQueued(
            order_id=order_id_of(saga_id),
            owner=owner_of(saga_id),
            refund_id=refund_id,
            status=RefundStatus.PENDING,
        )
