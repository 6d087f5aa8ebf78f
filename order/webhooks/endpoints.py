"""The endpoints a shop registered, as its API manages them (SQL; the rules are in `policy`).

Every function takes `owners`: the shops whose endpoints the caller may manage (None: every shop, an
operator). An endpoint of another shop is exactly an endpoint that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from order.webhooks.signing import new_secret

_VISIBLE = "(%(owners)s::text[] IS NULL OR w.owner = ANY(%(owners)s::text[]))"
_COLUMNS = """
w.id, w.owner, w.url, w.description, w.event_types, w.enabled, w.disabled_reason, w.created_by,
w.created_at, w.updated_at, w.failing_since, w.last_success_at, w.last_failure_at, w.last_error,
CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_expires_at END
  AS secret_rotation_ends_at,
(SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.delivered_at IS NULL)
  AS pending
"""


def _owners(owners: frozenset[str] | None) -> list[str] | None:
    return None if owners is None else sorted(owners)


async def create(
    conn: AsyncConnection,
    *,
    owner: str,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    by: str,
) -> tuple[dict[str, Any], str]:
    """A new enabled endpoint and its secret (the only time the secret leaves the database)."""
    secret = new_secret()
    endpoint_id = uuid.uuid4()
    await pg.execute(
        conn,
        "INSERT INTO webhook_endpoints (id, owner, url, description, event_types, enabled, secret,"
        " created_by) VALUES (%s, %s, %s, %s, %s, true, %s, %s)",
        (endpoint_id, owner, url, description, list(event_types), secret, by),
    )
    found = await get(conn, endpoint_id, frozenset({owner}))
    assert found is not None
    return found, secret


async def get(
    conn: AsyncConnection, endpoint_id: uuid.UUID, owners: frozenset[str] | None
) -> dict[str, Any] | None:
    rows = await pg.fetch_dicts(
        conn,
        f"SELECT {_COLUMNS} FROM webhook_endpoints w WHERE w.id = %(id)s AND {_VISIBLE}",
        {"id": endpoint_id, "owners": _owners(owners)},
    )
    return rows[0] if rows else None


async def list_endpoints(conn: AsyncConnection, owners: frozenset[str] | None) -> list[dict[str, Any]]:
    return await pg.fetch_dicts(
        conn,
        f"SELECT {_COLUMNS} FROM webhook_endpoints w WHERE {_VISIBLE} ORDER BY w.owner, w.created_at, w.id",
        {"owners": _owners(owners)},
    )


# The endpoint's pending deliveries are due now (each order's still go out in sequence: `store._CLAIM`).
_PENDING_DUE = (
    "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id = %(id)s"
    " AND delivered_at IS NULL AND next_attempt_at > now()"
)


async def set_enabled(
    conn: AsyncConnection, endpoint_id: uuid.UUID, owners: frozenset[str] | None, *, enabled: bool
) -> dict[str, Any] | None:
    """Disable (nothing is sent; pending deliveries are kept) or enable (pending deliveries are sent
    now, in order, and the failure count starts again)."""
    changed = await pg.execute(
        conn,
        "UPDATE webhook_endpoints w SET enabled = %(enabled)s, updated_at = now(),"
        " disabled_reason = CASE WHEN %(enabled)s THEN NULL ELSE 'disabled by request' END,"
        " failing_since = CASE WHEN %(enabled)s THEN NULL ELSE w.failing_since END,"
        " consecutive_failures = CASE WHEN %(enabled)s THEN 0 ELSE w.consecutive_failures END,"
        " next_attempt_at = CASE WHEN %(enabled)s THEN NULL ELSE w.next_attempt_at END"
        f" WHERE w.id = %(id)s AND {_VISIBLE}",
        {"id": endpoint_id, "owners": _owners(owners), "enabled": enabled},
    )
    if not changed:
        return None
    if enabled:
        await pg.execute(conn, _PENDING_DUE, {"id": endpoint_id})
    return await get(conn, endpoint_id, owners)


async def rotate_secret(
    conn: AsyncConnection, endpoint_id: uuid.UUID, owners: frozenset[str] | None, overlap: timedelta
) -> tuple[dict[str, Any], str] | None:
    """A new secret; the current one keeps signing (as the second signature) for `overlap`."""
    secret = new_secret()
    changed = await pg.execute(
        conn,
        "UPDATE webhook_endpoints w SET previous_secret = w.secret, secret = %(secret)s,"
        " previous_secret_expires_at = now() + %(overlap)s * interval '1 second', updated_at = now()"
        f" WHERE w.id = %(id)s AND {_VISIBLE}",
        {"id": endpoint_id, "owners": _owners(owners), "secret": secret, "overlap": overlap.total_seconds()},
    )
    if not changed:
        return None
    found = await get(conn, endpoint_id, owners)
    assert found is not None
    return found, secret


async def delete(conn: AsyncConnection, endpoint_id: uuid.UUID, owners: frozenset[str] | None) -> bool:
    """Remove the endpoint with its pending deliveries and attempts (the events stay: the orders' own)."""
    return bool(
        await pg.execute(
            conn,
            f"DELETE FROM webhook_endpoints w WHERE w.id = %(id)s AND {_VISIBLE}",
            {"id": endpoint_id, "owners": _owners(owners)},
        )
    )


async def attempts(
    conn: AsyncConnection, endpoint_id: uuid.UUID, *, limit: int, before: int | None
) -> list[dict[str, Any]]:
    """The endpoint's attempts, newest first (check it is visible first)."""
    return await pg.fetch_dicts(
        conn,
        "SELECT a.id, a.event_id, e.type AS event_type, e.order_id, e.seq, a.attempt, a.at, a.status_code,"
        " a.latency_ms, a.error, a.delivered FROM webhook_attempts a"
        " LEFT JOIN shop_events e ON e.event_id = a.event_id"
        " WHERE a.endpoint_id = %(id)s AND (%(before)s::bigint IS NULL OR a.id < %(before)s::bigint)"
        " ORDER BY a.id DESC LIMIT %(limit)s",
        {"id": endpoint_id, "before": before, "limit": limit},
    )


MAX_RESEND = 100_000

_CHOSEN = """
SELECT e.event_id, e.order_id, e.seq FROM shop_events e JOIN webhook_endpoints w ON w.id = %(id)s
WHERE e.owner = w.owner AND (
    e.event_id = %(event_id)s
    OR (%(since)s::timestamptz IS NOT NULL AND e.occurred_at >= %(since)s AND e.type = ANY(w.event_types)))
"""


async def count_resendable(conn: AsyncConnection, endpoint_id: uuid.UUID, since: datetime) -> int:
    rows = await pg.fetch_all(
        conn,
        f"SELECT count(*) FROM ({_CHOSEN}) AS chosen",
        {"id": endpoint_id, "event_id": None, "since": since},
    )
    return int(rows[0][0])


async def resend(
    conn: AsyncConnection, endpoint_id: uuid.UUID, *, event_id: uuid.UUID | None, since: datetime | None
) -> int:
    """Queue again one event of the endpoint's shop, or every event of its types since `since`; each
    order's queued events go out in sequence, before that order's other pending ones. Returns how many
    were queued (check the endpoint is visible first)."""
    rows = await pg.fetch_all(
        conn,
        f"""
        WITH queued AS (
            INSERT INTO webhook_deliveries (endpoint_id, event_id, order_id, seq, next_attempt_at)
            SELECT %(id)s, chosen.event_id, chosen.order_id, chosen.seq, now() FROM ({_CHOSEN}) AS chosen
            ON CONFLICT (endpoint_id, event_id) DO UPDATE SET delivered_at = NULL, next_attempt_at = now()
            RETURNING order_id
        )
        SELECT count(*) FROM queued
        """,
        {"id": endpoint_id, "event_id": event_id, "since": since},
    )
    return int(rows[0][0])
