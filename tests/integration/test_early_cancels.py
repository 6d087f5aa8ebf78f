"""A cancel sent before the order service has seen the order, on a real PostgreSQL.

The cancel and the creation of the order take the same per-order lock, so whichever commits first, the
other sees it: the cancel is applied as the order is created, or to the order that was just created.
Never lost between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from common.config import Service
from common.errors import NotFound
from common.events import Envelope, encode_event, new_envelope
from common.events.payment import PaymentCompleted
from common.events.values import Address, Money, OrderLine
from common.messaging import dead_letters
from common.messaging.dead_letters import RawMessage
from common.messaging.runner import EventRunner, MessageOutcome
from common.messaging.unit_of_work import UnitOfWork
from order import early_cancels, models
from order.cancel import ACCEPTED, NotCancellable, cancel_order
from order.handlers import INPUT_OF, SagaStep, advance_many, build_handlers
from order.payment_lookup import AcceptedCheckout
from order.queries import find_order
from tests.integration.schemas import Db, order_schema

T = TypeVar("T")


class FakePayments:
    """Payment's answers about checkouts, as `order.payment_lookup.PaymentLookup` gives them."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses

    async def accepted_checkout(self, order_id: str) -> AcceptedCheckout | None:
        status = self.statuses.get(order_id)
        if status is None:
            return None
        amount = {"amount_minor": 1000, "currency": "EUR"}
        return AcceptedCheckout(
            order_id, "acme", str(uuid.uuid4()), status, "c-1", amount, [], "2026-12-03T10:00:00"
        )


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with order_schema(database_urls["order"]) as schema:
        yield schema


def _units(db: Db, wakes: list[None] | None = None) -> Callable[[], UnitOfWork]:
    def wake() -> None:
        if wakes is not None:
            wakes.append(None)

    return lambda: UnitOfWork(db.engine, models.messaging.outbox, Service.ORDER.value, wake)


def _paid(order_id: str) -> Envelope:
    payload = PaymentCompleted(
        payment_id=uuid.uuid4(),
        customer_id="c-1",
        amount=Money(amount_minor=1000, currency="EUR"),
        lines=(OrderLine(sku="SKU-1", quantity=1, unit_price_minor=1000),),
        shipping_address=Address(name="A", line1="L", city="C", postal_code="1", country="DE"),
    )
    return new_envelope(payload, order_id=order_id, producer="payment")


async def _create(db: Db, order_id: str) -> list[str]:
    """The consumer's transaction for the order's PaymentCompleted; returns the types it emits."""
    envelope = _paid(order_id)
    async with db.engine.begin() as conn:
        advanced = await advance_many(conn, [SagaStep(order_id, INPUT_OF[envelope.type], cause=envelope)])
    return [e.type for result in advanced for e in result.emitted]


async def _order(db: Db, order_id: str) -> tuple[str, str | None]:
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(models.orders.c.status, models.orders.c.cancellation).where(
                    models.orders.c.order_id == order_id
                )
            )
        ).one()
        waiting = await conn.scalar(select(func.count()).select_from(models.early_cancels))
    assert waiting == 0, "an early cancel was left behind"
    return row.status, row.cancellation


async def test_a_cancel_before_the_order_is_recorded_is_kept_and_leaves_with_order_placed(db: Db) -> None:
    wakes: list[None] = []
    answer = await cancel_order(
        _units(db, wakes), FakePayments({"acme:o-1": "CAPTURED"}), "acme:o-1", by="acme"
    )
    again = await cancel_order(
        _units(db, wakes), FakePayments({"acme:o-1": "CAPTURED"}), "acme:o-1", by="acme"
    )

    assert (answer.status, answer.cancellation, answer.outcome) == (ACCEPTED, "requested", "applied")
    assert (again.status, again.outcome) == (ACCEPTED, "ignored")
    assert wakes == []  # nothing to publish yet
    assert await _create(db, "acme:o-1") == ["OrderPlaced", "OrderCancellationRequested"]
    assert await _order(db, "acme:o-1") == ("CANCELLING", "requested")


async def test_a_cancel_of_a_recorded_order_asks_delivery_and_wakes_the_relay(db: Db) -> None:
    await _create(db, "acme:o-1")
    wakes: list[None] = []

    answer = await cancel_order(
        _units(db, wakes), FakePayments({}), "acme:o-1", by="acme"
    )  # payment is not asked

    assert (answer.status, answer.cancellation, answer.outcome) == ("CANCELLING", "requested", "applied")
    assert len(wakes) == 1
    async with db.engine.connect() as conn:
        types = (await conn.scalars(select(models.messaging.outbox.c.event_type))).all()
    assert types == ["OrderCancellationRequested"]


async def test_a_cancel_of_an_order_no_checkout_accepted_is_not_found_and_keeps_nothing(db: Db) -> None:
    with pytest.raises(NotFound):
        await cancel_order(_units(db), FakePayments({}), "acme:o-unknown", by="acme")
    async with db.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(models.early_cancels)) == 0


async def test_a_cancel_of_a_declined_checkout_not_recorded_yet_is_refused(db: Db) -> None:
    with pytest.raises(NotCancellable) as refused:
        await cancel_order(_units(db), FakePayments({"acme:o-1": "DECLINED"}), "acme:o-1", by="acme")
    assert refused.value.extra == {"order_status": "REJECTED"}


async def test_a_cancel_racing_the_creation_waits_for_it_and_then_cancels_the_created_order(db: Db) -> None:
    envelope = _paid("acme:o-1")
    async with db.engine.connect() as consumer:
        transaction = await consumer.begin()
        await advance_many(consumer, [SagaStep("acme:o-1", INPUT_OF[envelope.type], cause=envelope)])
        # The consumer holds the creation lock and its order is not committed: the cancel must wait.
        cancelling = asyncio.create_task(
            cancel_order(_units(db), FakePayments({"acme:o-1": "CAPTURED"}), "acme:o-1", by="acme")
        )
        await asyncio.sleep(0.5)
        assert not cancelling.done()
        await transaction.commit()
    answer = await asyncio.wait_for(cancelling, 10)

    assert (answer.status, answer.cancellation) == ("CANCELLING", "requested")
    assert await _order(db, "acme:o-1") == ("CANCELLING", "requested")


async def test_a_creation_racing_a_cancel_being_recorded_waits_for_it_and_applies_it(db: Db) -> None:
    async with db.engine.connect() as api:
        transaction = await api.begin()
        await early_cancels.lock_creation(api, ["acme:o-1"])
        await early_cancels.record(api, "acme:o-1")
        # The cancel is recorded and not committed: the consumer must wait, then see it.
        creating = asyncio.create_task(_create(db, "acme:o-1"))
        await asyncio.sleep(0.5)
        assert not creating.done()
        await transaction.commit()

    assert await asyncio.wait_for(creating, 10) == ["OrderPlaced", "OrderCancellationRequested"]
    assert await _order(db, "acme:o-1") == ("CANCELLING", "requested")


async def test_an_order_not_recorded_yet_is_found_as_payment_accepted_it_with_its_kept_cancel(db: Db) -> None:
    payments = FakePayments({"acme:o-1": "CAPTURED", "o-2": "CAPTURED"})
    await cancel_order(_units(db), payments, "acme:o-1", by="acme")

    cancelled = await find_order(db.engine, payments, "acme:o-1")
    untouched = await find_order(db.engine, payments, "o-2")

    assert cancelled.status == ACCEPTED and cancelled.cancellation is not None
    assert (cancelled.cancellation.status, cancelled.cancel_reason) == ("requested", "customer")
    assert (untouched.status, untouched.cancellation, untouched.timeline) == (ACCEPTED, None, [])
    await _create(db, "acme:o-1")
    recorded = await find_order(db.engine, FakePayments({}), "acme:o-1")  # payment is not asked
    assert recorded.status == "CANCELLING" and [e.event_type for e in recorded.timeline]
    with pytest.raises(NotFound):
        await find_order(db.engine, FakePayments({}), "acme:o-unknown")


def _runner(db: Db) -> EventRunner:
    """Order's consumer as the service wires it (`order/app.py`): its handlers rely on the runner for the
    creation locks."""
    consumer = build_handlers(timedelta(seconds=30))
    return EventRunner(
        consumer=Service.ORDER.value,
        engine=db.engine,
        tables=models.messaging,
        handlers=consumer.handlers,
        batch_handler=consumer.batch_handler,
        claim_locks=consumer.claim_locks,
        emit_topic=Service.ORDER.value,
    )


def _message(envelope: Envelope, offset: int = 0) -> RawMessage:
    return RawMessage(
        topic="payment",
        partition=0,
        offset=offset,
        key=envelope.order_id.encode(),
        value=encode_event(envelope),
    )


async def _outbox(db: Db) -> list[tuple[str, str]]:
    async with db.engine.connect() as conn:
        outbox = models.messaging.outbox
        rows = await conn.execute(select(outbox.c.key, outbox.c.event_type).order_by(outbox.c.id))
    return [(key, event_type) for key, event_type in rows]


@contextlib.asynccontextmanager
async def _cancel_being_recorded(db: Db, order_id: str) -> AsyncIterator[None]:
    """The API's transaction that records a cancel for an order not seen yet, left open until the block
    ends, then committed."""
    async with db.engine.connect() as api:
        transaction = await api.begin()
        await early_cancels.lock_creation(api, [order_id])
        await early_cancels.record(api, order_id)
        yield
        await transaction.commit()


async def _waits_then_applies(db: Db, consuming: Awaitable[T], *, cancelled: str) -> T:
    """Run `consuming` while a cancel of `cancelled` is being recorded; it must wait for the cancel."""
    task = asyncio.ensure_future(consuming)
    async with _cancel_being_recorded(db, cancelled):
        await asyncio.sleep(0.5)
        assert not task.done(), "the runner created the order while a cancel of it was being recorded"
    return await asyncio.wait_for(task, 10)


async def test_the_runner_creating_an_order_while_its_cancel_is_being_recorded_waits_and_applies_it(
    db: Db,
) -> None:
    outcome = await _waits_then_applies(
        db, _runner(db).process(_message(_paid("acme:o-1"))), cancelled="acme:o-1"
    )

    assert outcome is MessageOutcome.APPLIED
    assert await _order(db, "acme:o-1") == ("CANCELLING", "requested")
    assert await _outbox(db) == [("acme:o-1", "OrderPlaced"), ("acme:o-1", "OrderCancellationRequested")]


async def test_a_batch_creating_orders_while_a_cancel_of_one_is_being_recorded_waits_and_applies_it(
    db: Db,
) -> None:
    messages = [_message(_paid("acme:o-2"), 0), _message(_paid("acme:o-1"), 1)]

    outcomes = await _waits_then_applies(db, _runner(db).process_batch(messages), cancelled="acme:o-1")

    assert outcomes == [MessageOutcome.APPLIED, MessageOutcome.APPLIED]
    assert await _order(db, "acme:o-1") == ("CANCELLING", "requested")
    assert await _order(db, "acme:o-2") == ("PLACED", None)
    assert await _outbox(db) == [
        ("acme:o-2", "OrderPlaced"),
        ("acme:o-1", "OrderPlaced"),
        ("acme:o-1", "OrderCancellationRequested"),
    ]


async def test_an_operators_retry_creating_an_order_while_its_cancel_is_being_recorded_waits_and_applies_it(
    db: Db,
) -> None:
    message = _message(_paid("acme:o-1"))
    async with db.engine.begin() as conn:
        letter_id = await dead_letters.park(
            conn,
            models.messaging.dead_letters,
            consumer=Service.ORDER.value,
            message=message,
            error="handler error: a bug since fixed",
            order_id="acme:o-1",
        )

    results = await _waits_then_applies(db, _runner(db).retry_dead_letter(letter_id), cancelled="acme:o-1")

    assert results == [(letter_id, MessageOutcome.APPLIED)]
    assert await _order(db, "acme:o-1") == ("CANCELLING", "requested")
