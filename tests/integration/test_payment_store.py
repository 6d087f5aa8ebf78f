"""Payment's SQL store on a real PostgreSQL, each write one statement in autocommit: recording a
checkout's attempt keeps the key and the payment together or neither; settling it moves the payment,
writes its event and keeps the answer once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import func, select

from common.config import Service
from common.events import new_envelope
from common.events.payment import PaymentFailed
from common.events.values import Money
from common.messaging.unit_of_work import UnitOfWork
from payment import models
from payment.checkout import CheckoutAnswer, CheckoutRequest, OrderIdTaken
from payment.domain import PaymentStatus
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


def _store(db: Db, wake: Callable[[], None] = lambda: None) -> SqlPaymentStore:
    """The store as payment's service context makes it: its units of work one statement each."""
    outbox = models.messaging.outbox
    return SqlPaymentStore(
        db.engine, lambda: UnitOfWork(db.engine, outbox, Service.PAYMENT.value, wake, one_statement=True)
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


async def test_a_settled_checkout_is_settled_once_with_one_event_and_a_replay_gets_the_first_answer(
    db: Db,
) -> None:
    wakes: list[None] = []
    store = _store(db, lambda: wakes.append(None))
    attempt = await store.record_attempt("key-1", "fp", "acme:o-1", REQUEST)
    failed = PaymentFailed(
        payment_id=attempt.payment_id,
        customer_id="c-1",
        amount=Money(amount_minor=2500, currency="EUR"),
        reason="declined",
    )
    event = new_envelope(failed, order_id="acme:o-1", producer=Service.PAYMENT.value)
    first = CheckoutAnswer(402, {"status": "declined"})

    assert await store.settle("key-1", attempt, PaymentStatus.FAILED, None, "declined", event, first) == first
    assert len(wakes) == 1  # the relay, once the event is committed
    late = CheckoutAnswer(202, {"status": "late"})
    assert await store.settle("key-1", attempt, PaymentStatus.FAILED, None, "declined", event, late) == first

    outbox = models.messaging.outbox
    async with db.engine.connect() as conn:
        events = (await conn.execute(select(outbox.c.event_id, outbox.c.key))).all()
        payment = (await conn.execute(select(models.payments))).one()
    assert events == [(event.event_id, "acme:o-1")]
    assert (payment.status, payment.failure_reason) == (PaymentStatus.FAILED, "declined")
    assert (await store.record_attempt("key-1", "fp", "acme:o-1", REQUEST)).answered == first
