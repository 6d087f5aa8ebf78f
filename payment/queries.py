"""Reads of payment's API: an order's payment with its refund, as the answer the API declares
(`payment/answers.py`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import reading
from common.errors import NotFound
from common.tenancy import order_id_of
from payment import models
from payment.answers import PaymentAnswer


async def payment_and_refund(engine: AsyncEngine, order_id: str) -> PaymentAnswer:
    """The payment of `order_id` with its refund (None if none); NotFound if the order has no payment."""
    payments, refunds = models.payments, models.refunds
    async with reading(engine) as conn:
        payment = (await conn.execute(select(payments).where(payments.c.order_id == order_id))).first()
        if payment is None:
            raise NotFound(f"payment for order {order_id_of(order_id)} not found")
        refund = (
            await conn.execute(select(refunds).where(refunds.c.payment_id == payment.payment_id))
        ).first()
    return PaymentAnswer.from_rows(payment, refund)
