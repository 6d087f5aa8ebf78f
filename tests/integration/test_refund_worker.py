"""The refund worker on a real PostgreSQL: a retry it schedules is started when it comes due, without
waiting for its timer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from common.config import Service
from common.messaging.unit_of_work import UnitOfWork
from payment import models
from payment.domain import PaymentStatus, RefundStatus
from payment.gateway import GatewayTimeout
from payment.refund_store import SqlRefundStore
from payment.refunds import RefundWorker
from tests.integration.schemas import Db, service_schema


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with service_schema(Service.PAYMENT, database_urls["payment"]) as schema:
        yield schema


class GatewayThatTimesOutOnce:
    def __init__(self) -> None:
        self.refund_calls = 0

    async def charge(self, **_: object) -> object:
        raise AssertionError("no charge in this test")

    async def refund(self, *, idempotency_key: str, **_: object) -> str:
        self.refund_calls += 1
        if self.refund_calls == 1:
            raise GatewayTimeout("no answer")
        return f"re_{idempotency_key}"


async def _pending_refund(db: Db) -> uuid.UUID:
    payment_id, refund_id = uuid.uuid4(), uuid.uuid4()
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(models.payments).values(
                payment_id=payment_id,
                order_id="acme:o-1",
                customer_id="c-1",
                amount_minor=1250,
                currency="EUR",
                payment_method="tok_visa",
                status=PaymentStatus.CAPTURED,
                gateway_reference="ch_1",
                lines=[],
                shipping_address={},
            )
        )
        await conn.execute(
            insert(models.refunds).values(
                refund_id=refund_id,
                payment_id=payment_id,
                order_id="acme:o-1",
                amount_minor=1250,
                currency="EUR",
                reason="out of stock",
                status=RefundStatus.PENDING,
            )
        )
    return refund_id


async def test_a_retry_the_worker_schedules_wakes_it_when_due(db: Db) -> None:
    refund_id = await _pending_refund(db)
    gateway = GatewayThatTimesOutOnce()
    worker = RefundWorker(
        store=SqlRefundStore(
            db.engine, lambda: UnitOfWork(db.engine, models.messaging.outbox, "payment", lambda: None)
        ),
        gateway=gateway,
        max_attempts=5,
        lease=timedelta(seconds=30),
    )
    woken = asyncio.Event()
    worker.wake = woken.set

    assert await worker.run_due() == 1  # the gateway times out: a retry half a second later
    assert not woken.is_set()
    await asyncio.wait_for(woken.wait(), timeout=5)
    assert await worker.run_due() == 1

    async with db.engine.connect() as conn:
        status = await conn.scalar(
            select(models.refunds.c.status).where(models.refunds.c.refund_id == refund_id)
        )
    assert status == RefundStatus.SUCCEEDED
    assert gateway.refund_calls == 2
