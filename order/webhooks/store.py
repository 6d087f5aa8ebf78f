"""The webhooks' SQL: events written with the change, deliveries claimed and settled, endpoints kept.

An order's events and the deliveries they make are written by two statements of the saga's own
transaction (`tell_shops`), so a change and what its shop is told commit together or not at all. Both
number the events the same way — one past the order's last stored `seq` — because every part of one
statement reads the same snapshot (the order's row lock, held by the saga, keeps that number from
moving underneath).

Ordering per order: a delivery is claimed only when no earlier event of its order is still pending for
its endpoint (what the claim reads is committed, so an acknowledgement that has not committed yet
holds the next event back until it has; nothing is handed over, so nothing can be missed). Every
delivery has a due time (now, or its backoff); the order's earlier pending ones are what hold it back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from order.saga_batch import Transition
from order.webhooks.events import events_of, snapshot


# The batch's new events, each numbered one past its order's last stored `seq` plus its place among the
# batch's events of the same order (`ordinal`), and identified by its order and number.
def _numbered(*, snapshots: bool) -> str:
    arrays, columns = ("%s::text[], %s::int[], %s::text[]", "order_id, ordinal, type")
    if snapshots:
        arrays, columns = f"{arrays}, %s::text[]", f"{columns}, order_snapshot"
    return (
        "SELECT n.*, md5('shop-event:' || n.order_id || ':' || n.seq)::uuid AS event_id FROM ("
        " SELECT e.*, coalesce((SELECT max(s.seq) FROM shop_events s WHERE s.order_id = e.order_id), 0)"
        f" + e.ordinal AS seq FROM unnest({arrays}) AS e({columns})) AS n"
    )


_INSERT_EVENTS = (
    "INSERT INTO shop_events (event_id, order_id, owner, seq, type, order_snapshot, occurred_at)"
    " SELECT e.event_id, e.order_id, split_part(e.order_id, ':', 1), e.seq, e.type,"
    f" e.order_snapshot::jsonb, clock_timestamp() FROM ({_numbered(snapshots=True)}) AS e"
)

# A delivery per enabled endpoint of the order's shop that wants the type, due now (it is sent once the
# order's earlier events to that endpoint are acknowledged: `_CLAIM`).
_INSERT_DELIVERIES = (
    "INSERT INTO webhook_deliveries (endpoint_id, event_id, order_id, seq, next_attempt_at)"
    " SELECT w.id, e.event_id, e.order_id, e.seq, now()"
    f" FROM ({_numbered(snapshots=False)}) AS e"
    " JOIN webhook_endpoints w ON w.owner = split_part(e.order_id, ':', 1) AND w.enabled"
    " AND e.type = ANY(w.event_types)"
)


def tell_shops(transitions: Sequence[Transition]) -> list[pg.Statement]:
    """The statements that record what the transitions tell their shops (none if they tell nothing);
    to run with the saga's other writes (`pg.execute_together`)."""
    order_ids: list[str] = []
    ordinals: list[int] = []
    types: list[str] = []
    snapshots: list[str] = []
    seen: dict[str, int] = {}
    for transition in transitions:
        told = events_of(transition.before, transition.after)
        if not told:
            continue
        order = transition.after
        state = json.dumps(snapshot(order))
        for event_type in told:
            seen[order.order_id] = seen.get(order.order_id, 0) + 1
            order_ids.append(order.order_id)
            ordinals.append(seen[order.order_id])
            types.append(event_type.value)
            snapshots.append(state)
    if not order_ids:
        return []
    return [
        pg.Statement(_INSERT_EVENTS, (order_ids, ordinals, types, snapshots)),
        pg.Statement(_INSERT_DELIVERIES, (order_ids, ordinals, types)),
    ]


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, with what it takes to send it."""

    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    order_id: str
    attempt: int
    url: str
    secrets: tuple[str, ...]  # the current secret first, then the previous one during a rotation
    event_type: str
    seq: int
    occurred_at: datetime
    order_snapshot: dict[str, Any]
    endpoint_failures: int  # the endpoint's failures in a row when it was claimed
    claimed_at: float  # the database's clock when it was claimed (Unix seconds)


# Due heads of enabled endpoints whose own gate is open, earliest first, at most `per_endpoint` in
# flight for an endpoint (`in_flight`: this sender's requests by endpoint) and one for an endpoint that
# is failing: a dead or hanging endpoint takes one slot per backoff step, never the sender. Each claimed
# one is due again after `lease` (its attempt is then taken as lost: the sender died) and counts an
# attempt.
_CLAIM = """
WITH open AS (
    SELECT d.endpoint_id, d.event_id, d.next_attempt_at,
        row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at) AS rank,
        CASE WHEN w.consecutive_failures > 0 THEN 1 ELSE %(per_endpoint)s END - coalesce(b.n, 0) AS room
    FROM webhook_deliveries d
    JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled
        AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= now())
    LEFT JOIN unnest(%(busy)s::uuid[], %(busy_counts)s::int[]) AS b(endpoint_id, n)
        ON b.endpoint_id = d.endpoint_id
    WHERE d.delivered_at IS NULL AND d.next_attempt_at <= now()
        AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries p
            WHERE p.endpoint_id = d.endpoint_id AND p.order_id = d.order_id AND p.seq < d.seq
                AND p.delivered_at IS NULL)
), due AS (
    SELECT d.endpoint_id, d.event_id FROM webhook_deliveries d
    JOIN open o ON o.endpoint_id = d.endpoint_id AND o.event_id = d.event_id AND o.rank <= o.room
    ORDER BY o.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + %(lease)s * interval '1 second', attempts = d.attempts + 1
FROM due, webhook_endpoints w, shop_events e
WHERE d.endpoint_id = due.endpoint_id AND d.event_id = due.event_id
  AND w.id = d.endpoint_id AND e.event_id = d.event_id
RETURNING d.endpoint_id, d.event_id, d.order_id, d.attempts, w.url, w.secret, w.consecutive_failures,
  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret,
  e.type, e.seq, e.occurred_at, e.order_snapshot, extract(epoch FROM clock_timestamp())::float8 AS claimed_at
"""


async def claim(
    conn: AsyncConnection,
    limit: int,
    lease: timedelta,
    *,
    per_endpoint: int = 4,
    in_flight: Mapping[uuid.UUID, int] | None = None,
) -> list[Claimed]:
    busy = {endpoint: count for endpoint, count in (in_flight or {}).items() if count}
    rows = await pg.fetch_dicts(
        conn,
        _CLAIM,
        {
            "limit": limit,
            "lease": lease.total_seconds(),
            "per_endpoint": per_endpoint,
            "busy": list(busy),
            "busy_counts": list(busy.values()),
        },
    )
    return [
        Claimed(
            endpoint_id=row["endpoint_id"],
            event_id=row["event_id"],
            order_id=row["order_id"],
            attempt=row["attempts"],
            url=row["url"],
            secrets=tuple(s for s in (row["secret"], row["previous_secret"]) if s),
            event_type=row["type"],
            seq=row["seq"],
            occurred_at=row["occurred_at"],
            order_snapshot=row["order_snapshot"],
            endpoint_failures=row["consecutive_failures"],
            claimed_at=row["claimed_at"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Outcome:
    """How one attempt went."""

    claimed: Claimed
    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    delivered: bool
    retry_in: float  # seconds until the next attempt, if it failed
    endpoint_retry_in: float = 0.0  # seconds until the endpoint is tried again, if it failed


async def any_endpoint_enabled(conn: AsyncConnection) -> bool:
    rows = await pg.fetch_all(conn, "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled)", ())
    return bool(rows[0][0])


# An endpoint deleted while its attempt was in flight takes the attempt's record with it.
_RECORD_ATTEMPTS = (
    "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, at, status_code, latency_ms, error,"
    " delivered) SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::int[], %s::timestamptz[], %s::int[],"
    " %s::float8[], %s::text[], %s::bool[]) AS x(endpoint_id, event_id, attempt, at, status_code,"
    " latency_ms, error, delivered)"
    " WHERE EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = x.endpoint_id)"
)
_DELIVERED = (
    "UPDATE webhook_deliveries d SET delivered_at = now(), next_attempt_at = NULL"
    " FROM unnest(%s::uuid[], %s::uuid[]) AS x(endpoint_id, event_id)"
    " WHERE d.endpoint_id = x.endpoint_id AND d.event_id = x.event_id AND d.delivered_at IS NULL"
)
_RETRY = (
    "UPDATE webhook_deliveries d SET next_attempt_at = now() + x.delay * interval '1 second'"
    " FROM unnest(%s::uuid[], %s::uuid[], %s::float8[]) AS x(endpoint_id, event_id, delay)"
    " WHERE d.endpoint_id = x.endpoint_id AND d.event_id = x.event_id AND d.delivered_at IS NULL"
)
_ENDPOINT_SUCCEEDED = (
    "UPDATE webhook_endpoints SET last_success_at = now(), failing_since = NULL, consecutive_failures = 0,"
    " next_attempt_at = NULL WHERE id = ANY(%s::uuid[])"
)
# A failing endpoint's gate: nothing is sent to it before its next attempt (one request, a probe).
_ENDPOINT_FAILED = (
    "UPDATE webhook_endpoints w SET last_failure_at = x.at, last_error = x.error,"
    " failing_since = coalesce(w.failing_since, x.at), consecutive_failures = w.consecutive_failures + 1,"
    " next_attempt_at = now() + x.delay * interval '1 second'"
    " FROM unnest(%s::uuid[], %s::timestamptz[], %s::text[], %s::float8[]) AS x(id, at, error, delay)"
    " WHERE w.id = x.id"
)


async def settle(conn: AsyncConnection, outcomes: Sequence[Outcome]) -> None:
    """Record the attempts and what follows from them."""
    claimed = [outcome.claimed for outcome in outcomes]
    done = [o.claimed for o in outcomes if o.delivered]
    failed = [o for o in outcomes if not o.delivered]
    writes = [
        pg.Statement(
            _RECORD_ATTEMPTS,
            (
                [c.endpoint_id for c in claimed],
                [c.event_id for c in claimed],
                [c.attempt for c in claimed],
                [o.at for o in outcomes],
                [o.status_code for o in outcomes],
                [o.latency_ms for o in outcomes],
                [o.error for o in outcomes],
                [o.delivered for o in outcomes],
            ),
        )
    ]
    succeeded = sorted({c.endpoint_id for c in done})
    if done:
        writes.append(pg.Statement(_DELIVERED, ([c.endpoint_id for c in done], [c.event_id for c in done])))
        writes.append(pg.Statement(_ENDPOINT_SUCCEEDED, (succeeded,)))
    if failed:
        writes.append(
            pg.Statement(
                _RETRY,
                (
                    [o.claimed.endpoint_id for o in failed],
                    [o.claimed.event_id for o in failed],
                    [o.retry_in for o in failed],
                ),
            )
        )
        last = {o.claimed.endpoint_id: o for o in sorted(failed, key=lambda o: o.at)}
        still_failing = [endpoint for endpoint in last if endpoint not in set(succeeded)]
        if still_failing:
            writes.append(
                pg.Statement(
                    _ENDPOINT_FAILED,
                    (
                        still_failing,
                        [last[e].at for e in still_failing],
                        [last[e].error or f"HTTP {last[e].status_code}" for e in still_failing],
                        [last[e].endpoint_retry_in for e in still_failing],
                    ),
                )
            )
    # Disjoint writes (attempts; acknowledged and failed deliveries; endpoints that succeeded and those
    # that only failed): one statement.
    await pg.execute_together(conn, writes)


async def database_now(conn: AsyncConnection) -> datetime:
    """The database's clock: the one the endpoints' failing times are on."""
    rows = await pg.fetch_all(conn, "SELECT now()", ())
    now: datetime = rows[0][0]
    return now


async def failing_since(conn: AsyncConnection) -> dict[uuid.UUID, datetime]:
    """The enabled endpoints that have failed every attempt since a time, with that time."""
    rows = await pg.fetch_all(
        conn,
        "SELECT id, failing_since FROM webhook_endpoints WHERE enabled AND failing_since IS NOT NULL",
        (),
    )
    return {row[0]: row[1] for row in rows}


_DISABLE = """
UPDATE webhook_endpoints SET enabled = false, updated_at = now(),
  disabled_reason = 'every attempt failed since ' || to_char(failing_since AT TIME ZONE 'UTC',
    'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' (last: ' || coalesce(last_error, 'no answer') || ')'
WHERE id = ANY(%s::uuid[]) AND enabled AND failing_since IS NOT NULL
RETURNING id, owner
"""


async def disable(conn: AsyncConnection, endpoint_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, str]]:
    """Disable these endpoints, with the reason (unless one succeeded meanwhile); (id, owner) of each."""
    rows = await pg.fetch_all(conn, _DISABLE, (list(endpoint_ids),))
    return [(row[0], row[1]) for row in rows]


async def forget_before(conn: AsyncConnection, before: timedelta) -> None:
    """Drop acknowledged deliveries, attempts and events older than the retention (pending deliveries
    and their events are kept whatever their age)."""
    seconds = (before.total_seconds(),)
    await pg.execute(
        conn, "DELETE FROM webhook_attempts WHERE at < now() - %s * interval '1 second'", seconds
    )
    await pg.execute(
        conn,
        "DELETE FROM webhook_deliveries WHERE delivered_at < now() - %s * interval '1 second'",
        seconds,
    )
    await pg.execute(
        conn,
        "DELETE FROM shop_events e WHERE e.occurred_at < now() - %s * interval '1 second'"
        " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.event_id)",
        seconds,
    )
