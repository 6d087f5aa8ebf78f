"""Order's handlers: every input to the saga goes through `advance`, in the caller's transaction.

`advance` locks the order row, asks the pure state machine what to do, and records the answer: the new
status, the events to emit (into the outbox, by the runner or the caller) and a timeline entry for what
was received, emitted, ignored or rejected. A rejected input is recorded and never applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.config import Service
from common.events import DecodedEvent, Envelope, new_envelope
from common.events.order import OrderCancelled, OrderCompleted, OrderPlaced
from common.events.payment import PaymentCompleted, PaymentFailed
from common.events.values import Money
from common.messaging.runner import Handler
from order import models
from order.saga import Decision, Emit, Outcome, SagaInput, decide

# Which saga input each consumed event type is.
INPUT_OF: dict[str, SagaInput] = {
    "PaymentCompleted": SagaInput.PAYMENT_COMPLETED,
    "PaymentFailed": SagaInput.PAYMENT_FAILED,
    "PaymentRefunded": SagaInput.PAYMENT_REFUNDED,
    "PaymentRefundFailed": SagaInput.PAYMENT_REFUND_FAILED,
    "DeliveryScheduled": SagaInput.DELIVERY_SCHEDULED,
    "OutOfStock": SagaInput.OUT_OF_STOCK,
    "Shipped": SagaInput.SHIPPED,
    "Delivered": SagaInput.DELIVERED,
}


@dataclass(frozen=True)
class Advanced:
    decision: Decision
    emitted: tuple[Envelope, ...]


async def advance(
    conn: AsyncConnection,
    order_id: str,
    saga_input: SagaInput,
    *,
    cause: Envelope | None = None,
    detail: str | None = None,
    deadline: timedelta | None = None,
) -> Advanced:
    orders = models.orders
    order = (
        await conn.execute(select(orders).where(orders.c.order_id == order_id).with_for_update())
    ).first()
    before = order.status if order is not None else None
    decision = decide(before, saga_input)
    label = cause.type if cause is not None else saga_input.value
    await _log(conn, order_id, "received" if cause else "requested", label, cause, before, decision, detail)
    if decision.outcome is not Outcome.APPLIED:
        return Advanced(decision, ())
    if order is None:
        assert cause is not None, "only a payment event creates an order"
        await _create(conn, order_id, cause, decision, deadline)
    else:
        cancel_reason = next((e.reason for e in decision.emits if e.kind is Emit.ORDER_CANCELLED), None)
        values: dict[str, Any] = {"status": decision.new_status, "updated_at": func.now()}
        if cancel_reason is not None:
            values["cancel_reason"] = cancel_reason
        await conn.execute(update(orders).where(orders.c.order_id == order_id).values(**values))
    if not decision.emits:
        return Advanced(decision, ())
    current = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).one()
    emitted = tuple(_emission(current, emission.kind, emission.reason, cause) for emission in decision.emits)
    for envelope in emitted:
        await _log_emitted(conn, order_id, envelope, decision)
    return Advanced(decision, emitted)


async def _create(
    conn: AsyncConnection, order_id: str, cause: Envelope, decision: Decision, deadline: timedelta | None
) -> None:
    payload = cause.payload
    if cause.type == "PaymentCompleted":
        completed = PaymentCompleted.model_validate(payload)
        values: dict[str, Any] = {
            "payment_id": completed.payment_id,
            "customer_id": completed.customer_id,
            "amount_minor": completed.amount.amount_minor,
            "currency": completed.amount.currency,
            "lines": [line.model_dump(mode="json") for line in completed.lines],
            "shipping_address": completed.shipping_address.model_dump(mode="json"),
            "deadline_at": func.now() + deadline if deadline is not None else None,
        }
    else:
        failed = PaymentFailed.model_validate(payload)
        values = {
            "payment_id": failed.payment_id,
            "customer_id": failed.customer_id,
            "amount_minor": failed.amount.amount_minor,
            "currency": failed.amount.currency,
            "lines": [],
            "cancel_reason": failed.reason,
        }
    await conn.execute(insert(models.orders).values(order_id=order_id, status=decision.new_status, **values))


def _emission(order: Any, kind: Emit, reason: str | None, cause: Envelope | None) -> Envelope:
    amount = Money(amount_minor=order.amount_minor, currency=order.currency)
    payload: OrderPlaced | OrderCancelled | OrderCompleted
    if kind is Emit.ORDER_PLACED:
        payload = OrderPlaced(
            payment_id=order.payment_id,
            customer_id=order.customer_id,
            amount=amount,
            lines=order.lines,
            shipping_address=order.shipping_address,
        )
    elif kind is Emit.ORDER_CANCELLED:
        payload = OrderCancelled(payment_id=order.payment_id, amount=amount, reason=reason)
    else:
        payload = OrderCompleted(payment_id=order.payment_id, amount=amount)
    return new_envelope(
        payload,
        order_id=order.order_id,
        producer=Service.ORDER.value,
        causation_id=cause.event_id if cause is not None else None,
    )


async def _log(
    conn: AsyncConnection,
    order_id: str,
    kind: str,
    label: str,
    cause: Envelope | None,
    before: str | None,
    decision: Decision,
    detail: str | None,
) -> None:
    if decision.outcome is Outcome.REJECTED:
        kind, detail = "rejected", decision.reason
    elif decision.outcome is Outcome.IGNORED:
        kind, detail = "ignored", decision.reason
    await conn.execute(
        insert(models.timeline).values(
            order_id=order_id,
            kind=kind,
            event_type=label,
            event_id=cause.event_id if cause is not None else None,
            status_before=before,
            status_after=decision.new_status,
            detail=detail,
        )
    )


async def _log_emitted(conn: AsyncConnection, order_id: str, envelope: Envelope, decision: Decision) -> None:
    await conn.execute(
        insert(models.timeline).values(
            order_id=order_id,
            kind="emitted",
            event_type=envelope.type,
            event_id=envelope.event_id,
            status_before=decision.new_status,
            status_after=decision.new_status,
            detail=envelope.payload.get("reason"),
        )
    )


def build_handlers(deadline: timedelta) -> dict[str, Handler]:
    """One handler for every event type order reacts to; each is `advance` with that event's input."""

    async def handle(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
        advanced = await advance(
            conn, event.order_id, INPUT_OF[event.type], cause=event.envelope, deadline=deadline
        )
        return advanced.emitted

    return dict.fromkeys(INPUT_OF, handle)
