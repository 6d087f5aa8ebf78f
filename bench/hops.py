"""Where a saga's milliseconds go: each hop of its chain of events, from the services' own tables.

Every event a service writes is an outbox row stamped when its transaction began (`created_at`) and when
the broker had acknowledged it (`published_at`: the relay's next pass marks it with that time); every event
a service applies is an inbox row stamped when the applying transaction began (`processed_at`). So
without any tracing, for each step of a saga from one event to the next:

    outbox wait   created_at → published_at   the writer's transaction to its commit, the relay's wake-up,
                                              its read, the produce and its acknowledgement
    transit       published_at → processed_at the broker to the consumer's fetch, Faust, the batch queue
    applied       processed_at → next event's created_at (0 when the applying transaction wrote it)
    in-service    the next event was written by the same service on its own (delivery's carrier steps)

A step whose next event the previous one did not cause (an API call came between) has its total only.

The steps are the saga's events in the order they were written (a saga's chain is sequential). All the
clocks are PostgreSQL's (one server), so no skew enters. The checkout's HTTP request before the first
event and the last event's way to the shop are outside this breakdown; the bench's end-to-end latency
includes them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from bench.stats import percentile


@dataclass(frozen=True)
class Written:
    """An outbox row: an event one service wrote."""

    service: str
    row_id: int  # the outbox's id: one transaction's events in the order it wrote them
    saga_id: str
    event_id: str
    event_type: str
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True)
class Applied:
    """An inbox row: a service applied an event."""

    service: str
    event_id: str
    processed_at: datetime


PARTS = ("outbox_wait", "transit", "applied", "in_service")


def steps_of(written: Iterable[Written], applied: Iterable[Applied]) -> dict[str, dict[str, list[float]]]:
    """Milliseconds of each part of each step, keyed by `"<event> → <next event>"`, over every saga."""
    applied_at = {(a.service, a.event_id): a.processed_at for a in applied}
    by_saga: dict[str, list[Written]] = defaultdict(list)
    for event in written:
        by_saga[event.saga_id].append(event)
    steps: dict[str, dict[str, list[float]]] = defaultdict(lambda: {part: [] for part in (*PARTS, "total")})
    for events in by_saga.values():
        events.sort(key=lambda e: (e.created_at, e.row_id))
        for before, after in itertools.pairwise(events):
            if before.published_at is None:
                continue
            parts = steps[f"{before.event_type} → {after.event_type}"]
            parts["total"].append(_ms(after.created_at - before.created_at))
            received = applied_at.get((after.service, before.event_id))
            if after.service == before.service:
                parts["in_service"].append(_ms(after.created_at - before.created_at))
                continue
            if received is None or received > after.created_at:
                continue  # not caused by `before` (a cancel through the API, say): its total only
            parts["outbox_wait"].append(_ms(before.published_at - before.created_at))
            parts["transit"].append(_ms(received - before.published_at))
            parts["applied"].append(_ms(after.created_at - received))
    return steps


def summarise(steps: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, Any]:
    """p50/p99 of every part of every step (the steps that occur in at least 1 % of the sagas)."""
    most = max((len(parts["total"]) for parts in steps.values()), default=0)
    table: dict[str, Any] = {}
    for step, parts in sorted(steps.items(), key=lambda item: -len(item[1]["total"])):
        if len(parts["total"]) < max(1, most // 100):
            continue
        table[step] = {"count": len(parts["total"])} | {
            part: {"p50_ms": _p(values, 0.5), "p99_ms": _p(values, 0.99)}
            for part, values in parts.items()
            if values
        }
    return table


async def measure(conninfos: Mapping[str, str], saga_ids: Sequence[str]) -> dict[str, Any]:
    """The breakdown of the given sagas, read from each service's database (`conninfos` by service)."""
    written: list[Written] = []
    applied: list[Applied] = []
    for service, conninfo in conninfos.items():
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as db:
            rows = await (
                await db.execute(
                    "SELECT id, key, event_id::text, event_type, created_at, published_at FROM outbox"
                    " WHERE key = ANY(%s)",
                    (list(saga_ids),),
                )
            ).fetchall()
            written += [Written(service, *row) for row in rows]
            rows = await (
                await db.execute(
                    "SELECT event_id::text, processed_at FROM processed_events WHERE order_id = ANY(%s)",
                    (list(saga_ids),),
                )
            ).fetchall()
            applied += [Applied(service, *row) for row in rows]
    return summarise(steps_of(written, applied))


def _ms(delta: Any) -> float:
    return float(delta.total_seconds()) * 1000


def _p(values: Sequence[float], q: float) -> float:
    return round(percentile(sorted(values), q), 1)
