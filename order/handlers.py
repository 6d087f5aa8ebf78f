"""Order's handlers: every input to the saga goes through `advance_many`, in the caller's transaction.

`advance_many` locks the orders it touches, asks the pure state machine what to do with each input in
turn, and records the answers: the new statuses, the events to emit (into the outbox, by the runner or
the caller) and a timeline entry for what was received, emitted, ignored or rejected. A rejected input is
recorded and never applied. However many inputs it is given, it costs two statements: one locks the
orders, one inserts new orders, updates changed ones and appends the timeline; `advance` is the
one-input case the HTTP API, the deadline timer and the rebuild use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from common.config import Service
from common.events import DecodedEvent, Envelope, new_envelope
from common.events.order import OrderCancelled, OrderCompleted, OrderPlaced
from common.events.payment import PaymentCompleted, PaymentFailed
from common.events.values import Money
from common.messaging.runner import BatchHandler, Handler
from order import models
from order.saga import Decision, Emit, Outcome, SagaInput, decide

# The batch's orders, locked in one order for every caller (no deadlocks between them), as the saga
# reads them.
_LOCK_ORDERS = (
    "SELECT order_id, payment_id, customer_id, status, amount_minor, currency, lines, shipping_address,"
    f" cancel_reason FROM {models.orders.name} WHERE order_id = ANY(%s::text[]) ORDER BY order_id FOR UPDATE"
)

# New orders, one array per column; the deadline is the server's now() plus each order's
# `deadline_after` (none: no deadline).
_INSERT_ORDERS = (
    f"INSERT INTO {models.orders.name} (order_id, payment_id, customer_id, status, amount_minor,"
    " currency, lines, shipping_address, cancel_reason, deadline_at)"
    " SELECT o.order_id, o.payment_id, o.customer_id, o.status, o.amount_minor, o.currency,"
    " o.lines::json, o.shipping_address::json, o.cancel_reason, now() + o.deadline_after"
    " FROM unnest(%s::text[], %s::uuid[], %s::text[], %s::text[], %s::bigint[], %s::text[],"
    " %s::text[], %s::text[], %s::text[], %s::interval[]) AS o(order_id, payment_id, customer_id,"
    " status, amount_minor, currency, lines, shipping_address, cancel_reason, deadline_after)"
)

# Changed orders: status and cancel reason, one array per column.
_UPDATE_ORDERS = (
    f"UPDATE {models.orders.name} SET status = changed.status, cancel_reason = changed.cancel_reason,"
    " updated_at = clock_timestamp()"
    " FROM unnest(%s::text[], %s::text[], %s::text[]) AS changed(order_id, status, cancel_reason)"
    f" WHERE {models.orders.name}.order_id = changed.order_id"
)

# Timeline entries in the given order, stamped with the wall clock (see `_append_to_timeline`).
_TIMELINE_COLUMNS = ("order_id", "kind", "event_type", "event_id", "status_before", "status_after", "detail")
_APPEND_TIMELINE = (
    f"INSERT INTO {models.timeline.name} (at, {', '.join(_TIMELINE_COLUMNS)})"
    f" SELECT clock_timestamp(), {', '.join('entry.' + column for column in _TIMELINE_COLUMNS)}"
    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[])"
    f" WITH ORDINALITY AS entry({', '.join(_TIMELINE_COLUMNS)}, position) ORDER BY entry.position"
)

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


@dataclass(frozen=True)
class SagaStep:
    """One input to one order's saga: an event (`cause`), or an API call or timer (no cause)."""

    order_id: str
    saga_input: SagaInput
    cause: Envelope | None = None
    detail: str | None = None


async def advance(
    conn: AsyncConnection,
    order_id: str,
    saga_input: SagaInput,
    *,
    cause: Envelope | None = None,
    detail: str | None = None,
    deadline: timedelta | None = None,
) -> Advanced:
    """One input (the API's cancel, the deadline timer, the rebuild): `advance_many` with one step."""
    steps = [SagaStep(order_id, saga_input, cause, detail)]
    return (await advance_many(conn, steps, deadline=deadline))[0]


async def advance_many(
    conn: AsyncConnection, steps: Sequence[SagaStep], *, deadline: timedelta | None = None
) -> list[Advanced]:
    """Apply the steps in the given order; a later step of an order sees what the earlier ones did."""
    locked = await pg.fetch_dicts(conn, _LOCK_ORDERS, (sorted({step.order_id for step in steps}),))
    current: dict[str, dict[str, Any]] = {row["order_id"]: row for row in locked}
    created: dict[str, dict[str, Any]] = {}
    changed: set[str] = set()
    timeline: list[dict[str, Any]] = []
    results: list[Advanced] = []
    for step in steps:
        order = current.get(step.order_id)
        before = order["status"] if order is not None else None
        decision = decide(before, step.saga_input)
        received = _received_entry(step, before, decision)
        if decision.outcome is not Outcome.APPLIED:
            timeline.append(received | {"detail": decision.reason})
            results.append(Advanced(decision, ()))
            continue
        if order is None:
            assert step.cause is not None, "only a payment event creates an order"
            order = created[step.order_id] = current[step.order_id] = _new_order(step, decision, deadline)
        else:
            order["status"] = decision.new_status
            for emission in decision.emits:
                if emission.kind is Emit.ORDER_CANCELLED and emission.reason is not None:
                    order["cancel_reason"] = emission.reason
            if step.order_id not in created:
                changed.add(step.order_id)
        emitted = tuple(
            _emission(order, emission.kind, emission.reason, step.cause) for emission in decision.emits
        )
        timeline.append(received | {"detail": step.detail})
        timeline.extend(_emitted_entry(step.order_id, envelope, decision) for envelope in emitted)
        results.append(Advanced(decision, emitted))
    # New orders, changed orders and the timeline are disjoint writes: one statement for all three.
    writes = [_insert_orders(list(created.values()))] if created else []
    if changed:
        writes.append(
            pg.Statement(
                _UPDATE_ORDERS,
                (
                    sorted(changed),
                    [current[key]["status"] for key in sorted(changed)],
                    [current[key]["cancel_reason"] for key in sorted(changed)],
                ),
            )
        )
    writes.append(_append_to_timeline(timeline))
    await pg.execute_together(conn, writes)
    return results


def _new_order(step: SagaStep, decision: Decision, deadline: timedelta | None) -> dict[str, Any]:
    """The order row a payment event creates: PLACED from PaymentCompleted, CANCELLED from PaymentFailed."""
    assert step.cause is not None
    payload = step.cause.payload
    if step.cause.type == "PaymentCompleted":
        completed = PaymentCompleted.model_validate(payload)
        return {
            "order_id": step.order_id,
            "status": decision.new_status,
            "payment_id": completed.payment_id,
            "customer_id": completed.customer_id,
            "amount_minor": completed.amount.amount_minor,
            "currency": completed.amount.currency,
            "lines": [line.model_dump(mode="json") for line in completed.lines],
            "shipping_address": completed.shipping_address.model_dump(mode="json"),
            "cancel_reason": None,
            "deadline_after": deadline,  # deadline_at = the server's now() + this; none: no deadline
        }
    failed = PaymentFailed.model_validate(payload)
    return {
        "order_id": step.order_id,
        "status": decision.new_status,
        "payment_id": failed.payment_id,
        "customer_id": failed.customer_id,
        "amount_minor": failed.amount.amount_minor,
        "currency": failed.amount.currency,
        "lines": [],
        "shipping_address": None,
        "cancel_reason": failed.reason,
        "deadline_after": None,
    }


def _emission(order: dict[str, Any], kind: Emit, reason: str | None, cause: Envelope | None) -> Envelope:
    amount = Money(amount_minor=order["amount_minor"], currency=order["currency"])
    payload: OrderPlaced | OrderCancelled | OrderCompleted
    if kind is Emit.ORDER_PLACED:
        payload = OrderPlaced(
            payment_id=order["payment_id"],
            customer_id=order["customer_id"],
            amount=amount,
            lines=order["lines"],
            shipping_address=order["shipping_address"],
        )
    elif kind is Emit.ORDER_CANCELLED:
        payload = OrderCancelled(payment_id=order["payment_id"], amount=amount, reason=reason)
    else:
        payload = OrderCompleted(payment_id=order["payment_id"], amount=amount)
    return new_envelope(
        payload,
        order_id=order["order_id"],
        producer=Service.ORDER.value,
        causation_id=cause.event_id if cause is not None else None,
    )


def _received_entry(step: SagaStep, before: str | None, decision: Decision) -> dict[str, Any]:
    """The timeline entry for an input: received (an event) or requested (an API call or timer), or
    rejected / ignored when the state machine said so."""
    if decision.outcome is Outcome.REJECTED:
        kind = "rejected"
    elif decision.outcome is Outcome.IGNORED:
        kind = "ignored"
    else:
        kind = "received" if step.cause is not None else "requested"
    return {
        "order_id": step.order_id,
        "kind": kind,
        "event_type": step.cause.type if step.cause is not None else step.saga_input.value,
        "event_id": step.cause.event_id if step.cause is not None else None,
        "status_before": before,
        "status_after": decision.new_status,
    }


def _emitted_entry(order_id: str, envelope: Envelope, decision: Decision) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "kind": "emitted",
        "event_type": envelope.type,
        "event_id": envelope.event_id,
        "status_before": decision.new_status,
        "status_after": decision.new_status,
        "detail": envelope.payload.get("reason"),
    }


def _insert_orders(rows: list[dict[str, Any]]) -> pg.Statement:
    return pg.Statement(
        _INSERT_ORDERS,
        (
            [row["order_id"] for row in rows],
            [row["payment_id"] for row in rows],
            [row["customer_id"] for row in rows],
            [row["status"] for row in rows],
            [row["amount_minor"] for row in rows],
            [row["currency"] for row in rows],
            [json.dumps(row["lines"]) for row in rows],
            [_json_or_none(row["shipping_address"]) for row in rows],
            [row["cancel_reason"] for row in rows],
            [row["deadline_after"] for row in rows],
        ),
    )


def _json_or_none(value: Any) -> str | None:
    return json.dumps(value) if value is not None else None


def _append_to_timeline(entries: list[dict[str, Any]]) -> pg.Statement:
    """Append timeline entries in the given order (the timeline's id order), in one statement.

    Stamped with the wall clock, not the transaction's start (`now()`): one transaction can apply a
    whole batch of events, and the timeline's durations must still be those of each event.
    """
    return pg.Statement(
        _APPEND_TIMELINE,
        tuple([entry.get(column) for entry in entries] for column in _TIMELINE_COLUMNS),
    )


def build_handlers(deadline: timedelta) -> tuple[dict[str, Handler], BatchHandler]:
    """How order applies the events it reacts to: one at a time (each is `advance` with that event's
    input), and a whole batch at once (`advance_many`), which the runner prefers."""

    async def handle(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
        advanced = await advance(
            conn, event.order_id, INPUT_OF[event.type], cause=event.envelope, deadline=deadline
        )
        return advanced.emitted

    async def handle_batch(conn: AsyncConnection, events: Sequence[DecodedEvent]) -> Sequence[Envelope]:
        steps = [SagaStep(event.order_id, INPUT_OF[event.type], cause=event.envelope) for event in events]
        advanced = await advance_many(conn, steps, deadline=deadline)
        return [envelope for result in advanced for envelope in result.emitted]

    return dict.fromkeys(INPUT_OF, handle), handle_batch
