"""The inbox: remembers which events a consumer has already applied."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Table, delete, func
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import pg
from common.events import Envelope
from common.messaging.dead_letters import PARKED


async def claim_event(conn: AsyncConnection, inbox: Table, consumer: str, envelope: Envelope) -> bool:
    """Record that `consumer` applies `envelope` in this transaction; False if it already did.

    Called inside the handler's transaction, so the record commits if and only if the effect does:
    a redelivered event finds its row and becomes a no-op.
    """
    return envelope.event_id in await claim_events(conn, inbox, consumer, [envelope])


async def claim_events(
    conn: AsyncConnection, inbox: Table, consumer: str, envelopes: Sequence[Envelope]
) -> set[uuid.UUID]:
    """Claim many events in one statement; returns the ids claimed now (the others were applied before).
    An id that appears twice is claimed once."""
    rows = await pg.fetch_all(
        conn,
        f"INSERT INTO {inbox.name} (consumer, event_id, event_type, order_id)"
        " SELECT %s, claimed.* FROM unnest(%s::uuid[], %s::text[], %s::text[])"
        " AS claimed(event_id, event_type, order_id)"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        (
            consumer,
            [envelope.event_id for envelope in envelopes],
            [envelope.type for envelope in envelopes],
            [envelope.order_id for envelope in envelopes],
        ),
    )
    return {event_id for (event_id,) in rows}


@dataclass(frozen=True)
class Claim:
    """What `claim_in_sequence` did: claimed these ids, or nothing because `blocked_by` is parked."""

    claimed: set[uuid.UUID]
    blocked_by: int | None = None


async def claim_in_sequence(
    conn: AsyncConnection,
    inbox: Table,
    dead_letters: Table,
    consumer: str,
    envelopes: Sequence[Envelope],
    locks: pg.AdvisoryLocks | None = None,
) -> Claim:
    """Claim the events unless one of their orders has a parked letter; then claim none of them.

    The rule: an order's events apply in sequence, so a parked event holds back every later event of
    its order until an operator retries or discards it. `blocked_by` is then the oldest parked letter of
    these orders (the one to wait behind). The check and the claims are one statement: for the runner,
    the first statement of every transaction.

    `locks`, when given, are taken by the same statement whenever nothing blocks the claim (a statement
    fewer than taking them apart), before it inserts a claim. The handler's first read is a later
    statement, so its snapshot is taken after the locks were granted.

    The statement also makes the rest of the transaction plan each prepared statement once
    (`pg.generic_plans`), local to it so that the connection goes back to the pool with the server's
    default; its last branch never yields a row.
    """
    params = (
        consumer,
        sorted({envelope.order_id for envelope in envelopes}),
        consumer,
        [envelope.event_id for envelope in envelopes],
        [envelope.type for envelope in envelopes],
        [envelope.order_id for envelope in envelopes],
    )
    sql = _claim_sql(inbox.name, dead_letters.name, with_locks=locks is not None)
    rows = await pg.fetch_all(conn, sql, params if locks is None else (*locks.params, *params))
    for blocker, _ in rows:
        if blocker is not None:
            return Claim(claimed=set(), blocked_by=int(blocker))
    return Claim(claimed={event_id for _, event_id in rows})


@functools.cache
def _claim_sql(inbox: str, dead_letters: str, *, with_locks: bool) -> str:
    """`claim_in_sequence`'s statement, made once per table pair and variant."""
    # An unreferenced CTE is never run: a claim that goes ahead (nothing blocks it) evaluates the count,
    # and with it takes the locks, whichever of the two conditions PostgreSQL evaluates first.
    locked = f"locked AS ({pg.AdvisoryLocks.SQL})," if with_locks else ""
    when_locked = " AND (SELECT count(*) FROM locked) >= 0" if with_locks else ""
    return (
        # `status = 'parked'` literal, for the partial index (see common/pg.py).
        f"WITH {locked} blocker AS (SELECT id FROM {dead_letters} WHERE consumer = %s"
        f" AND order_id = ANY(%s::text[]) AND status = '{PARKED}' ORDER BY id LIMIT 1),"
        f" claimed AS (INSERT INTO {inbox} (consumer, event_id, event_type, order_id)"
        " SELECT %s, event.* FROM unnest(%s::uuid[], %s::text[], %s::text[])"
        f" AS event(event_id, event_type, order_id) WHERE NOT EXISTS (SELECT FROM blocker){when_locked}"
        " ON CONFLICT DO NOTHING RETURNING event_id)"
        " SELECT id, NULL::uuid FROM blocker UNION ALL SELECT NULL, event_id FROM claimed"
        f" UNION ALL SELECT NULL, NULL WHERE {pg.generic_plans(transaction_only=True)} IS NULL"
    )


async def count_duplicate(conn: AsyncConnection, counters: Table, consumer: str, count: int = 1) -> None:
    """Count redelivered events (in the transaction that recognised them)."""
    await pg.execute(
        conn,
        f"INSERT INTO {counters.name} AS counted (consumer, duplicates) VALUES (%s, %s)"
        " ON CONFLICT (consumer) DO UPDATE SET duplicates = counted.duplicates + excluded.duplicates",
        (consumer, count),
    )


async def forget_processed_before(engine: AsyncEngine, inbox: Table, retention: timedelta) -> int:
    """Delete inbox entries older than `retention`.

    The rule: `retention` must exceed the longest time an event can be redelivered — the topics'
    retention (Kafka's default is 7 days), since a replay from the earliest offset re-reads that far
    back. The default, 8 days, keeps every event a replay can bring back; raise it with the topics'.
    """
    async with engine.begin() as conn:
        result = await conn.execute(delete(inbox).where(inbox.c.processed_at < func.now() - retention))
    return result.rowcount or 0
