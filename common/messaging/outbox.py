"""The transactional outbox: events are written with the state change, and published afterwards."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from common.events import Envelope, encode_event


async def enqueue(
    conn: AsyncConnection,
    outbox: Table,
    topic: str,
    envelopes: Iterable[Envelope],
    traces: Sequence[str | None] = (),
) -> int:
    """Add events to the outbox inside the caller's transaction; the relay publishes them after commit.

    They take ids in the given order, and the relay publishes in id order: the events of one order reach
    the topic in the order they were emitted.
    """
    envelopes = list(envelopes)
    if envelopes:
        await pg.execute_together(conn, [enqueue_statement(outbox, topic, envelopes, traces)])
    return len(envelopes)


def enqueue_statement(
    outbox: Table,
    topic: str,
    envelopes: Sequence[Envelope],
    traces: Sequence[str | None] = (),
    *,
    only_if: str | None = None,
) -> pg.Statement:
    """`enqueue` as a statement, to run together with the caller's other writes (`pg.execute_together`).

    `traces` holds each event's `traceparent` (the span that caused it, common/tracing.py), in the same
    order; empty when traces are off. `only_if` names a `WITH` query of the statement this one becomes
    part of: the events are written only if that query returned a row (a change made in the same
    statement, such as a status moved only from the state it was in)."""
    condition = f" WHERE EXISTS (SELECT FROM {only_if})" if only_if is not None else ""
    return pg.Statement(
        f"INSERT INTO {outbox.name} (topic, key, event_id, event_type, value, trace_context)"
        " SELECT %s, event.key, event.event_id, event.event_type, event.value, event.trace_context"
        " FROM unnest(%s::text[], %s::uuid[], %s::text[], %s::bytea[], %s::text[])"
        f" WITH ORDINALITY AS event(key, event_id, event_type, value, trace_context, position){condition}"
        " ORDER BY event.position",
        (
            topic,
            [envelope.order_id for envelope in envelopes],
            [envelope.event_id for envelope in envelopes],
            [envelope.type for envelope in envelopes],
            [encode_event(envelope) for envelope in envelopes],
            list(traces) if traces else [None] * len(envelopes),
        ),
    )
