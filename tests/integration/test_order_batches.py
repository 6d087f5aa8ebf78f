"""Order's batch path (`advance_many`) against the one-input path (`advance`), on a real PostgreSQL.

The runner applies a whole batch of events with `advance_many` in one transaction; the API, the deadline
timer and a batch that had to fall back use `advance`. Both must leave the same orders, the same
timeline and emit the same events, whatever the interleaving of orders in the batch.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from common.events import Envelope, new_envelope
from common.events.delivery import CancellationConfirmed, CancellationRefused, DeliveryScheduled, OutOfStock
from common.events.payment import PaymentCompleted, PaymentFailed, PaymentRefunded
from common.events.values import Address, Money, OrderLine, SkuShortage
from delivery.lifecycle import STEPS, CarrierStep
from delivery.shipping import step_event
from order import models
from order.handlers import INPUT_OF, Advanced, SagaStep, advance, advance_many
from order.saga import SagaInput
from tests.carrier_steps import CARRIER_STEPS, steps_after, steps_before, steps_through
from tests.integration.schemas import Db, order_schema

DEADLINE = timedelta(seconds=30)
LINE = OrderLine(sku="SKU-1", quantity=2, unit_price_minor=500)
ADDRESS = Address(name="Ada", line1="1 Way", city="Paris", postal_code="75001", country="FR")


def _payment_id(order_id: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, order_id)


def _event(order_id: str, kind: str) -> Envelope:
    money = Money(amount_minor=1000, currency="EUR")
    payloads: dict[str, Any] = {
        "completed": PaymentCompleted(
            payment_id=_payment_id(order_id),
            customer_id="c-1",
            amount=money,
            lines=(LINE,),
            shipping_address=ADDRESS,
        ),
        "failed": PaymentFailed(
            payment_id=_payment_id(order_id), customer_id="c-1", amount=money, reason="card_declined"
        ),
        "scheduled": DeliveryScheduled(lines=(LINE,)),
        "out_of_stock": OutOfStock(short=(SkuShortage(sku="SKU-1", requested=2, available=0),)),
        "confirmed": CancellationConfirmed(released=(LINE,)),
        "refused": CancellationRefused(shipment_status="SHIPPED", tracking_code="TRK-1"),
        "refunded": PaymentRefunded(payment_id=_payment_id(order_id), refund_id=uuid.uuid4(), amount=money),
        # A carrier step's event, by the step's name ("ship": Shipped), as delivery sends it.
        **{step.value: step_event(rules.emits, "TRK-1") for step, rules in STEPS.items()},
    }
    return new_envelope(payloads[kind], order_id=order_id, producer="test")


def _story(order_id: str, kinds: list[str]) -> list[SagaStep]:
    steps = []
    for kind in kinds:
        if kind == "cancel":
            steps.append(SagaStep(order_id, SagaInput.CANCEL_REQUESTED, detail="customer asked"))
        else:
            envelope = _event(order_id, kind)
            steps.append(SagaStep(order_id, INPUT_OF[envelope.type], cause=envelope))
    return steps


SHIP = CarrierStep.SHIP
# The carrier's steps appear by name: every one of them, those up to and with the pickup, those after it.
STORIES: dict[str, list[str]] = {
    "happy": ["completed", "scheduled", *CARRIER_STEPS],
    "out-of-stock": ["completed", "out_of_stock", "refunded"],
    "declined": ["failed"],
    "cancelled": ["completed", "cancel", "scheduled", "confirmed", "refunded"],
    # The pickup before the order exists, and the delivery before the pickup: both rejected.
    "out-of-order": [
        SHIP,
        "completed",
        "completed",
        "scheduled",
        *steps_before(SHIP),
        *steps_after(SHIP),
        SHIP,
    ],
    "cancel-too-late": ["completed", "scheduled", *steps_through(SHIP), "cancel", *steps_after(SHIP)],
    "cancel-refused": [
        "completed",
        "scheduled",
        "cancel",
        *steps_through(SHIP),
        "refused",
        *steps_after(SHIP),
    ],
    "cancel-crossed-stock-out": ["completed", "cancel", "out_of_stock", "confirmed", "refunded"],
}


def _interleaved(stories: dict[str, list[str]]) -> list[SagaStep]:
    """Round-robin over the stories: each order's own steps stay in their order."""
    queues = [_story(f"acme:o-{name}", kinds) for name, kinds in stories.items()]
    steps: list[SagaStep] = []
    while any(queues):
        for queue in queues:
            if queue:
                steps.append(queue.pop(0))
    return steps


@pytest.fixture()
async def two_schemas(database_urls: dict[str, str]) -> AsyncIterator[tuple[Db, Db]]:
    async with order_schema(database_urls["order"]) as one, order_schema(database_urls["order"]) as other:
        yield one, other


async def _state(db: Db) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    orders, timeline = models.orders, models.timeline
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(orders).order_by(orders.c.order_id))).all()
        entries = (await conn.execute(select(timeline).order_by(timeline.c.id))).all()
    order_rows = [
        (
            r.order_id,
            r.status,
            r.cancel_reason,
            r.cancellation,
            r.payment_id,
            r.lines,
            r.deadline_at is not None,
        )
        for r in rows
    ]
    # Per order, in id order: the timeline of one order does not depend on how orders were interleaved.
    timeline_rows = sorted(
        (
            (e.order_id, index, e.kind, e.event_type, e.status_before, e.status_after, e.detail)
            for index, e in enumerate(entries)
        ),
        key=lambda entry: (entry[0], entry[1]),
    )
    return order_rows, [entry[:1] + entry[2:] for entry in timeline_rows]


def _emitted(results: list[Advanced]) -> list[list[tuple[str, dict[str, Any]]]]:
    return [[(e.type, e.payload) for e in result.emitted] for result in results]


async def test_a_batch_of_interleaved_orders_ends_exactly_as_applying_each_input_on_its_own(
    two_schemas: tuple[Db, Db],
) -> None:
    batched_db, single_db = two_schemas
    steps = _interleaved(STORIES)

    async with batched_db.engine.begin() as conn:
        batched = await advance_many(conn, steps, deadline=DEADLINE)
    single: list[Advanced] = []
    for step in steps:
        async with single_db.engine.begin() as conn:
            single.append(
                await advance(
                    conn,
                    step.order_id,
                    step.saga_input,
                    cause=step.cause,
                    detail=step.detail,
                    deadline=DEADLINE,
                )
            )

    assert [r.decision for r in batched] == [r.decision for r in single]
    assert _emitted(batched) == _emitted(single)
    assert await _state(batched_db) == await _state(single_db)
    outcomes = {row[0]: (row[1], row[2], row[3]) for row in (await _state(batched_db))[0]}
    assert outcomes == {
        "acme:o-happy": ("COMPLETED", None, None),
        "acme:o-out-of-stock": ("REFUNDED", "out_of_stock", None),
        "acme:o-declined": ("REJECTED", "card_declined", None),
        "acme:o-cancelled": ("REFUNDED", "customer", "confirmed"),
        "acme:o-out-of-order": (
            "SHIPPED",
            None,
            None,
        ),  # a Delivered before its Shipped is rejected, not applied
        "acme:o-cancel-too-late": ("COMPLETED", None, None),
        "acme:o-cancel-refused": ("COMPLETED", "customer", "refused"),
        "acme:o-cancel-crossed-stock-out": ("REFUNDED", "out_of_stock", "confirmed"),
    }
