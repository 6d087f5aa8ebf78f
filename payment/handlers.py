"""How payment reacts to the `order` topic: a cancelled order's charge is refunded, exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.events import DecodedEvent, Envelope
from common.events.order import OrderCancelled
from common.messaging.runner import Handler
from payment import models
from payment.domain import PaymentStatus, RefundStatus, refundable


def refund_id_for(payment_id: uuid.UUID) -> uuid.UUID:
    """One refund per payment, with an id derived from it: the refund's idempotency key at the gateway."""
    return uuid.uuid5(payment_id, "refund")


async def on_order_cancelled(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
    """Queue the refund of the full charge; the refund worker calls the gateway outside this transaction.

    A payment that was never captured has nothing to refund. A second OrderCancelled for the same order
    (a replay, or a cancel racing a timeout) finds the refund already there and adds nothing.
    """
    assert isinstance(event.payload, OrderCancelled)
    payments, refunds = models.payments, models.refunds
    payment = (
        await conn.execute(select(payments).where(payments.c.order_id == event.order_id).with_for_update())
    ).first()
    if payment is None or not refundable(PaymentStatus(payment.status)):
        return []
    await conn.execute(
        insert(refunds)
        .values(
            refund_id=refund_id_for(payment.payment_id),
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            reason=event.payload.reason,
            status=RefundStatus.PENDING,
            trace_context=event.trace,
        )
        .on_conflict_do_nothing(index_elements=[refunds.c.payment_id])
    )
    return []


HANDLERS: dict[str, Handler] = {"OrderCancelled": on_order_cancelled}
