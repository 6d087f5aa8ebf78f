"""The unit of work on a real PostgreSQL: events reach the outbox only with a commit, and wake the relay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from common.config import Service
from common.events import new_envelope
from common.events.order import OrderCompleted
from common.events.values import Money
from common.messaging.unit_of_work import UnitOfWork
from order import models
from tests.integration.schemas import Db, order_schema


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with order_schema(database_urls["order"]) as schema:
        yield schema


def _event(order_id: str) -> object:
    payload = OrderCompleted(payment_id=uuid.uuid4(), amount=Money(amount_minor=1, currency="EUR"))
    return new_envelope(payload, order_id=order_id, producer="order")


async def _outbox(db: Db) -> list[str]:
    async with db.engine.connect() as conn:
        return list((await conn.scalars(select(models.messaging.outbox.c.key).order_by("id"))).all())


async def _early_cancels(db: Db) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(models.early_cancels)) or 0)


async def test_a_committed_unit_writes_its_events_in_order_with_its_change_then_wakes_the_relay(
    db: Db,
) -> None:
    wakes: list[None] = []
    work = UnitOfWork(db.engine, models.messaging.outbox, Service.ORDER.value, lambda: wakes.append(None))
    async with work:
        await work.conn.execute(models.early_cancels.insert().values(order_id="acme:o-1"))
        work.emit([_event("acme:o-1"), _event("acme:o-2")])  # type: ignore[list-item]
        assert wakes == []  # not before the commit

    assert await _outbox(db) == ["acme:o-1", "acme:o-2"]
    assert await _early_cancels(db) == 1
    assert len(wakes) == 1


async def test_a_failing_unit_writes_neither_its_change_nor_its_events_and_wakes_nothing(db: Db) -> None:
    wakes: list[None] = []
    work = UnitOfWork(db.engine, models.messaging.outbox, Service.ORDER.value, lambda: wakes.append(None))
    with pytest.raises(RuntimeError):
        async with work:
            await work.conn.execute(models.early_cancels.insert().values(order_id="acme:o-1"))
            work.emit([_event("acme:o-1")])  # type: ignore[list-item]
            raise RuntimeError("the use case failed")

    assert await _outbox(db) == []
    assert await _early_cancels(db) == 0
    assert wakes == []


async def test_a_unit_that_emits_nothing_does_not_wake_the_relay(db: Db) -> None:
    wakes: list[None] = []
    async with UnitOfWork(db.engine, models.messaging.outbox, "order", lambda: wakes.append(None)) as work:
        await work.conn.execute(models.early_cancels.insert().values(order_id="acme:o-1"))
    assert wakes == [] and await _early_cancels(db) == 1
