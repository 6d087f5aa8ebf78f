"""A batch of saga inputs applied to the orders they touch, in memory: what to insert, update and log.

Pure (no database): `advance_many` in `order/handlers.py` loads the rows, calls `apply_steps` and writes
the `Changes` back in one statement. Inputs apply in the given order, and a later input of an order sees
what the earlier ones did. A rejected input is recorded on the timeline and never applied.

A cancel the customer sent before the order service had seen the order (an "early cancel", kept by the
API until the order exists) is applied right after the input that creates the order, in the same batch:
OrderPlaced and OrderCancellationRequested then leave together, so delivery hears of the cancel before
it could ship anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from common.config import Service
from common.events import Envelope, new_envelope
from common.events.order import OrderCancellationRequested, OrderCancelled, OrderCompleted, OrderPlaced
from common.events.payment import PaymentCompleted, PaymentFailed
from order.saga import (
    CREATING_INPUTS,
    Cancellation,
    Decision,
    Emission,
    Emit,
    OrderStatus,
    Outcome,
    SagaInput,
    decide,
    is_terminal,
)

EARLY_CANCEL_DETAIL = "the customer asked to cancel before the order service had recorded the order"


@dataclass(frozen=True)
class OrderRow:
    """An order as the saga reads and writes it."""

    order_id: str
    payment_id: uuid.UUID
    customer_id: str
    status: OrderStatus
    amount_minor: int
    currency: str
    lines: list[dict[str, Any]]
    shipping_address: dict[str, Any] | None
    cancel_reason: str | None = None
    cancellation: Cancellation | None = None
    deadline_after: timedelta | None = None  # new rows only: deadline_at = the server's now() + this
    # The saga's trace (common/tracing.py): a cancel or an expired deadline continues it.
    trace_context: str | None = None
    # When payment answered the checkout (its event's occurred_at): the saga's duration starts there.
    checkout_at: datetime | None = None


@dataclass(frozen=True)
class SagaStep:
    """One input to one order's saga: an event (`cause`), or an API call or timer (no cause)."""

    order_id: str
    saga_input: SagaInput
    cause: Envelope | None = None
    detail: str | None = None
    trace: str | None = None  # the consuming span of `cause`: an order it creates keeps it


@dataclass(frozen=True)
class TimelineEntry:
    order_id: str
    kind: str  # received | requested | emitted | ignored | rejected
    event_type: str
    event_id: uuid.UUID | None
    status_before: str | None
    status_after: str | None
    detail: str | None


@dataclass(frozen=True)
class Advanced:
    decision: Decision
    emitted: tuple[Envelope, ...]
    order: OrderRow | None = None  # the order after this input (None: it still does not exist)


@dataclass(frozen=True)
class Transition:
    """An order before (None: it did not exist) and after one applied input."""

    before: OrderRow | None
    after: OrderRow


@dataclass
class Changes:
    created: dict[str, OrderRow] = field(default_factory=dict)
    changed: dict[str, OrderRow] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    results: list[Advanced] = field(default_factory=list)  # one per given step, in order
    early_cancels_applied: list[str] = field(default_factory=list)
    # Every applied input's change, in the order applied (an early cancel's follow-up included, which
    # `results` folds into the step that created the order): what the shop is told (order/webhooks).
    transitions: list[Transition] = field(default_factory=list)

    @property
    def emitted(self) -> list[Envelope]:
        return [envelope for result in self.results for envelope in result.emitted]

    @property
    def finished(self) -> list[OrderRow]:
        """The orders these inputs brought to a final status (a saga ends once: a terminal status never
        changes again), as they now are."""
        return [
            transition.after
            for transition in self.transitions
            if is_terminal(transition.after.status)
            and (transition.before is None or not is_terminal(transition.before.status))
        ]


def apply_steps(
    orders: Mapping[str, OrderRow],
    steps: Sequence[SagaStep],
    *,
    deadline: timedelta | None,
    early_cancels: Collection[str] = (),
) -> Changes:
    """Apply `steps` in order to `orders` (the rows that exist); `early_cancels` are orders whose
    customer asked to cancel before they existed."""
    current = dict(orders)
    changes = Changes()
    for step in steps:
        result = _apply_one(current, changes, step, deadline)
        changes.results.append(result)
        created_now = result.decision.outcome is Outcome.APPLIED and step.saga_input in CREATING_INPUTS
        if created_now and step.order_id in early_cancels:
            early = SagaStep(step.order_id, SagaInput.CANCEL_REQUESTED, detail=EARLY_CANCEL_DETAIL)
            follow_up = _apply_one(current, changes, early, deadline)
            # The follow-up's events leave with the step that created the order.
            changes.results[-1] = Advanced(
                result.decision, result.emitted + follow_up.emitted, follow_up.order
            )
            changes.early_cancels_applied.append(step.order_id)
    return changes


def _apply_one(
    current: dict[str, OrderRow], changes: Changes, step: SagaStep, deadline: timedelta | None
) -> Advanced:
    order = current.get(step.order_id)
    before = order.status if order is not None else None
    decision = decide(before, step.saga_input)
    received = _received_entry(step, before, decision)
    if decision.outcome is not Outcome.APPLIED:
        changes.timeline.append(replace(received, detail=decision.reason))
        return Advanced(decision, (), order)
    if order is None:
        assert step.cause is not None, "only a payment event creates an order"
        order = replace(_new_order(step.cause, decision, deadline), trace_context=step.trace)
        changes.created[step.order_id] = order
    else:
        order = _moved(order, decision)
        if step.order_id in changes.created:
            changes.created[step.order_id] = order
        else:
            changes.changed[step.order_id] = order
    changes.transitions.append(Transition(current.get(step.order_id), order))
    current[step.order_id] = order
    emitted = tuple(_emission(order, emission, step.cause) for emission in decision.emits)
    changes.timeline.append(received)
    changes.timeline.extend(_emitted_entry(step.order_id, envelope, decision) for envelope in emitted)
    return Advanced(decision, emitted, order)


def _moved(order: OrderRow, decision: Decision) -> OrderRow:
    """The order after an applied decision: its status, the cancellation's state, and the reason of a
    cancel (requested, or decided by delivery's OutOfStock)."""
    assert decision.new_status is not None
    cancel_reason = order.cancel_reason
    for emission in decision.emits:
        if emission.kind in (Emit.ORDER_CANCELLATION_REQUESTED, Emit.ORDER_CANCELLED) and emission.reason:
            cancel_reason = emission.reason.value
    return replace(
        order,
        status=decision.new_status,
        cancel_reason=cancel_reason,
        cancellation=decision.cancellation or order.cancellation,
    )


def _new_order(cause: Envelope, decision: Decision, deadline: timedelta | None) -> OrderRow:
    """The order a payment event creates: PLACED from PaymentCompleted, REJECTED from PaymentFailed."""
    assert decision.new_status is not None
    if cause.type == "PaymentCompleted":
        completed = PaymentCompleted.model_validate(cause.payload)
        return OrderRow(
            order_id=cause.order_id,
            payment_id=completed.payment_id,
            customer_id=completed.customer_id,
            status=decision.new_status,
            amount_minor=completed.amount.amount_minor,
            currency=completed.amount.currency,
            lines=[line.model_dump(mode="json") for line in completed.lines],
            shipping_address=completed.shipping_address.model_dump(mode="json"),
            deadline_after=deadline,
            checkout_at=cause.occurred_at,
        )
    failed = PaymentFailed.model_validate(cause.payload)
    return OrderRow(
        order_id=cause.order_id,
        payment_id=failed.payment_id,
        customer_id=failed.customer_id,
        status=decision.new_status,
        amount_minor=failed.amount.amount_minor,
        currency=failed.amount.currency,
        lines=[],
        shipping_address=None,
        cancel_reason=failed.reason,
        checkout_at=cause.occurred_at,
    )


def _emission(order: OrderRow, emission: Emission, cause: Envelope | None) -> Envelope:
    amount = {"amount_minor": order.amount_minor, "currency": order.currency}
    payload: OrderPlaced | OrderCancellationRequested | OrderCancelled | OrderCompleted
    if emission.kind is Emit.ORDER_PLACED:
        payload = OrderPlaced.model_validate(
            {
                "payment_id": order.payment_id,
                "customer_id": order.customer_id,
                "amount": amount,
                "lines": order.lines,
                "shipping_address": order.shipping_address,
            }
        )
    elif emission.kind is Emit.ORDER_CANCELLATION_REQUESTED:
        payload = OrderCancellationRequested.model_validate(
            {"payment_id": order.payment_id, "reason": order.cancel_reason}
        )
    elif emission.kind is Emit.ORDER_CANCELLED:
        payload = OrderCancelled.model_validate(
            {"payment_id": order.payment_id, "amount": amount, "reason": order.cancel_reason}
        )
    else:
        payload = OrderCompleted.model_validate({"payment_id": order.payment_id, "amount": amount})
    return new_envelope(
        payload,
        order_id=order.order_id,
        producer=Service.ORDER.value,
        causation_id=cause.event_id if cause is not None else None,
    )


def _received_entry(step: SagaStep, before: OrderStatus | None, decision: Decision) -> TimelineEntry:
    """The timeline entry for an input: received (an event) or requested (an API call or timer), or
    rejected / ignored when the state machine said so."""
    if decision.outcome is Outcome.REJECTED:
        kind = "rejected"
    elif decision.outcome is Outcome.IGNORED:
        kind = "ignored"
    else:
        kind = "received" if step.cause is not None else "requested"
    return TimelineEntry(
        order_id=step.order_id,
        kind=kind,
        event_type=step.cause.type if step.cause is not None else step.saga_input.value,
        event_id=step.cause.event_id if step.cause is not None else None,
        status_before=before,
        status_after=decision.new_status,
        detail=step.detail,
    )


def _emitted_entry(order_id: str, envelope: Envelope, decision: Decision) -> TimelineEntry:
    return TimelineEntry(
        order_id=order_id,
        kind="emitted",
        event_type=envelope.type,
        event_id=envelope.event_id,
        status_before=decision.new_status,
        status_after=decision.new_status,
        detail=envelope.payload.get("reason"),
    )
