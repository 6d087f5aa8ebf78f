"""Payment's SQL store on a real PostgreSQL: recording a checkout's attempt, one statement in autocommit,
keeps the key and the payment together or neither."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from common.config import Service
from common.messaging.unit_of_work import UnitOfWork
from payment import models
from payment.checkout import CheckoutRequest, OrderIdTaken
from payment.payment_store import SqlPaymentStore
from tests.integration.schemas import Db, service_schema

ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
REQUEST = CheckoutRequest.model_validate(
    {
        "customer_id": "c-1",
        "currency": "EUR",
        "payment_method": "tok_visa",
        "lines": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 1250}],
        "shipping_address": ADDRESS,
    }
)


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with service_schema(Service.PAYMENT, database_urls["payment"]) as schema:
        yield schema


def _store(db: Db) -> SqlPaymentStore:
    return SqlPaymentStore(
        db.engine, lambda: UnitOfWork(db.engine, models.messaging.outbox, Service.PAYMENT.value, lambda: None)
    )


async def _count(db: Db, table: str) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(models.metadata.tables[table])) or 0)


async def test_a_replayed_key_finds_the_payment_its_first_attempt_recorded(db: Db) -> None:
    store = _store(db)
    first = await store.record_attempt("key-1", "fp", "acme:o-1", REQUEST)
    again = await store.record_attempt("key-1", "fp", "acme:o-1", REQUEST)

    assert (again.payment_id, again.order_id) == (first.payment_id, "acme:o-1")
    assert (await _count(db, "payments"), await _count(db, "checkout_requests")) == (1, 1)


async def test_an_order_id_charged_under_another_key_is_refused_and_that_key_is_not_kept(db: Db) -> None:
    store = _store(db)
    await store.record_attempt("key-1", "fp", "acme:o-1", REQUEST)

    with pytest.raises(OrderIdTaken):
        await store.record_attempt("key-2", "fp", "acme:o-1", REQUEST)
    # Not kept: the key can still start a checkout of another order.
    assert (await _count(db, "payments"), await _count(db, "checkout_requests")) == (1, 1)
    other = await store.record_attempt("key-2", "fp", "acme:o-2", REQUEST)
    assert other.order_id == "acme:o-2"
    assert (await _count(db, "payments"), await _count(db, "checkout_requests")) == (2, 2)
