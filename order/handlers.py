"""Order's handlers: every input to the saga goes through `advance_many`, in the caller's transaction.

`advance_many` locks the orders it touches, lets the pure `apply_steps` (`order/saga_batch.py`) decide
what each input does, and writes the result: new and changed orders and the timeline in one statement.
The events to emit go back to the caller (the runner, or a unit of work), which writes its outbox.
However many inputs it is given, it costs a fixed number of statements; `advance` is the one-input
case the HTTP API, the deadline timer and the rebuild use.

Creating an order and recording a cancel for an order not seen yet (`early_cancels.py`) take the same
per-order lock first, so a cancel that races the order's creation is never lost between the two.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from common.events import DecodedEvent, Envelope
from common.events.catalogue import spec_of
from common.messaging.runner import BatchHandler, ClaimLocks, Effects, Handler
from order import early_cancels, models
from order.metrics import SagaDurations
from order.saga import CREATING_INPUTS, SOURCES, Cancellation, OrderStatus, SagaInput
from order.saga_batch import (
    Advanced,
    Changes,
    OrderRow,
    SagaStep,
    TimelineEntry,
    apply_steps,
)
from order.webhooks.store import tell_shops

# The batch's orders, locked in one order for every caller (no deadlocks between them), as the saga
# reads them; then, in the same statement (a round trip fewer per created order), which of the orders
# to create have a cancel waiting (`early_cancels.py`; rows with `early_cancel` true and only an id).
# The caller holds those orders' creation lock from an earlier statement, so this statement's snapshot
# sees every cancel recorded for them.
_ORDER_COLUMNS = (
    "order_id, payment_id, customer_id, status, amount_minor, currency, lines, shipping_address,"
    " cancel_reason, cancellation, trace_context, checkout_at"
)
_LOCK_ORDERS = (
    f"WITH locked AS (SELECT {_ORDER_COLUMNS} FROM {models.orders.name}"
    " WHERE order_id = ANY(%s::text[]) ORDER BY order_id FOR UPDATE)"
    " SELECT locked.*, false AS early_cancel FROM locked"
    " UNION ALL SELECT order_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true"
    f" FROM {models.early_cancels.name} WHERE order_id = ANY(%s::text[])"
)

# New orders, one array per column; the deadline is the server's now() plus each order's
# `deadline_after` (none: no deadline).
_INSERT_ORDERS = (
    f"INSERT INTO {models.orders.name} (order_id, payment_id, customer_id, status, amount_minor,"
    " currency, lines, shipping_address, cancel_reason, cancellation, deadline_at, trace_context,"
    " checkout_at)"
    " SELECT o.order_id, o.payment_id, o.customer_id, o.status, o.amount_minor, o.currency,"
    " o.lines::json, o.shipping_address::json, o.cancel_reason, o.cancellation, now() + o.deadline_after,"
    " o.trace_context, o.checkout_at"
    " FROM unnest(%s::text[], %s::uuid[], %s::text[], %s::text[], %s::bigint[], %s::text[],"
    " %s::text[], %s::text[], %s::text[], %s::text[], %s::interval[], %s::text[], %s::timestamptz[])"
    " AS o(order_id, payment_id, customer_id, status, amount_minor, currency, lines, shipping_address,"
    " cancel_reason, cancellation, deadline_after, trace_context, checkout_at)"
)

# Changed orders: status, cancel reason and cancellation, one array per column.
_UPDATE_ORDERS = (
    f"UPDATE {models.orders.name} SET status = changed.status, cancel_reason = changed.cancel_reason,"
    " cancellation = changed.cancellation, updated_at = clock_timestamp()"
    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])"
    " AS changed(order_id, status, cancel_reason, cancellation)"
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

# Which saga input each consumed event type is, by its wire name, as `order.saga.declared_source` declares
# it (every event type on the topics order consumes has one, and no two inputs share one:
# tests/unit/test_saga_inputs.py).
INPUT_OF: dict[str, SagaInput] = {
    spec_of(source).name: saga_input for saga_input, source in SOURCES.items() if source is not None
}


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
    changes, writes = await decide_many(conn, steps, deadline=deadline)
    await pg.execute_together(conn, writes)
    return changes.results


async def decide_many(
    conn: AsyncConnection,
    steps: Sequence[SagaStep],
    *,
    deadline: timedelta | None = None,
    creation_locked: bool = False,
) -> tuple[Changes, list[pg.Statement]]:
    """`advance_many` but its last write: the steps decided on the locked orders, and the independent
    writes that save them (the consumer's runner runs them with the outbox rows as one statement).
    `creation_locked`: the caller took the creation locks of the orders the steps create, in an earlier
    statement of this transaction (the runner, `creation_locks_of`)."""
    creating = sorted({step.order_id for step in steps if step.saga_input in CREATING_INPUTS})
    if creating and not creation_locked:
        await early_cancels.lock_creation(conn, creating)
    orders, waiting = await _lock_orders(conn, sorted({step.order_id for step in steps}), creating)
    early = {order_id for order_id in waiting if order_id not in orders}  # a cancel of an order not seen
    changes = apply_steps(orders, steps, deadline=deadline, early_cancels=early)
    return changes, _writes(changes)


async def _lock_orders(
    conn: AsyncConnection, order_ids: list[str], creating: list[str]
) -> tuple[dict[str, OrderRow], set[str]]:
    """The orders that exist among `order_ids`, locked; and which of `creating` have a cancel waiting
    (call with their creation lock held)."""
    orders: dict[str, OrderRow] = {}
    waiting: set[str] = set()
    for row in await pg.fetch_dicts(conn, _LOCK_ORDERS, (order_ids, creating)):
        if row.pop("early_cancel"):
            waiting.add(row["order_id"])
            continue
        orders[row["order_id"]] = OrderRow(
            **{
                **row,
                "status": OrderStatus(row["status"]),
                "cancellation": Cancellation(row["cancellation"]) if row["cancellation"] else None,
            }
        )
    return orders, waiting


def _writes(changes: Changes) -> list[pg.Statement]:
    """New orders, changed orders, the timeline, the early cancels taken and what the shops are told:
    disjoint writes, run as one statement."""
    writes = []
    if changes.created:
        writes.append(_insert_orders(list(changes.created.values())))
    if changes.changed:
        writes.append(_update_orders(list(changes.changed.values())))
    if changes.early_cancels_applied:
        writes.append(early_cancels.forget_statement(changes.early_cancels_applied))
    writes.append(_append_to_timeline(changes.timeline))
    writes.extend(tell_shops(changes.transitions))
    return writes


def _insert_orders(rows: list[OrderRow]) -> pg.Statement:
    return pg.Statement(
        _INSERT_ORDERS,
        (
            [row.order_id for row in rows],
            [row.payment_id for row in rows],
            [row.customer_id for row in rows],
            [row.status.value for row in rows],
            [row.amount_minor for row in rows],
            [row.currency for row in rows],
            [json.dumps(row.lines) for row in rows],
            [json.dumps(row.shipping_address) if row.shipping_address is not None else None for row in rows],
            [row.cancel_reason for row in rows],
            [row.cancellation.value if row.cancellation else None for row in rows],
            [row.deadline_after for row in rows],
            [row.trace_context for row in rows],
            [row.checkout_at for row in rows],
        ),
    )


def _update_orders(rows: list[OrderRow]) -> pg.Statement:
    rows = sorted(rows, key=lambda row: row.order_id)
    return pg.Statement(
        _UPDATE_ORDERS,
        (
            [row.order_id for row in rows],
            [row.status.value for row in rows],
            [row.cancel_reason for row in rows],
            [row.cancellation.value if row.cancellation else None for row in rows],
        ),
    )


def _append_to_timeline(entries: list[TimelineEntry]) -> pg.Statement:
    """Append timeline entries in the given order (the timeline's id order), in one statement.

    Stamped with the wall clock, not the transaction's start (`now()`): one transaction can apply a
    whole batch of events, and the timeline's durations must still be those of each event.
    """
    return pg.Statement(
        _APPEND_TIMELINE,
        tuple([getattr(entry, column) for entry in entries] for column in _TIMELINE_COLUMNS),
    )


class ConsumerHandlers(NamedTuple):
    """How order's consumer applies events, for the runner (`common.app.create_service`)."""

    handlers: dict[str, Handler]
    batch_handler: BatchHandler
    claim_locks: ClaimLocks


def creation_locks_of(envelopes: Sequence[Envelope]) -> pg.AdvisoryLocks | None:
    """The creation locks of the orders these events create (`early_cancels.py`), for the runner to take
    with its inbox claim; None when none of them creates one (most events)."""
    creating = [envelope.order_id for envelope in envelopes if INPUT_OF.get(envelope.type) in CREATING_INPUTS]
    return early_cancels.creation_locks(creating) if creating else None


def build_handlers(deadline: timedelta, durations: SagaDurations | None = None) -> ConsumerHandlers:
    """How order applies the events it reacts to: one at a time (each is `advance` with that event's
    input), and a whole batch at once (`advance_many`), which the runner prefers. The sagas a batch
    finishes are timed into `durations` once it has committed.

    The handlers hold the creation locks of the orders they create from the runner, which takes them with
    its inbox claim (`claim_locks`, a statement fewer on every created order), not by themselves."""

    async def handle(conn: AsyncConnection, event: DecodedEvent) -> Effects:
        return await handle_batch(conn, [event])

    async def handle_batch(conn: AsyncConnection, events: Sequence[DecodedEvent]) -> Effects:
        steps = [
            SagaStep(event.order_id, INPUT_OF[event.type], cause=event.envelope, trace=event.trace)
            for event in events
        ]
        changes, writes = await decide_many(conn, steps, deadline=deadline, creation_locked=True)
        finished = changes.finished
        committed = [partial(durations.observe, finished)] if finished and durations is not None else []
        return Effects(events=changes.emitted, writes=writes, committed=committed)

    return ConsumerHandlers(dict.fromkeys(INPUT_OF, handle), handle_batch, creation_locks_of)
