"""Statements and transactions each service sends PostgreSQL per saga, as PostgreSQL counted them.

Every statement is a round trip: a send, a wake-up and a receive on each side, which the profiles
(bench/profiles.py) show as most of a service's CPU at a shop's everyday load. Unlike CPU time and
latency on a shared machine, which drift twofold between identical runs, the count is exact and the same
on every run: a change that saves round trips shows here whatever the machine's noise.

The bench's PostgreSQL loads `pg_stat_statements` (`SERVER_SETTINGS`); the counters are reset before each
step and read after it. Only the services' own roles count (the bench's reads as the administrator do
not), by database, so by service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

SERVER_SETTINGS = {"shared_preload_libraries": "pg_stat_statements"}

_TRANSACTION_START = "BEGIN"


async def reset(admin_conninfo: str) -> None:
    """Zero the counters (creating the extension's views the first time)."""
    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as db:
        await db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await db.execute("SELECT pg_stat_statements_reset()")


Counted = dict[str, dict[str, float]]
"""Per service: statements and transactions per saga."""

Heaviest = dict[str, list[tuple[float, str]]]
"""Per service: its most frequent statements, (calls per saga, the statement's text), most frequent first."""


async def measure(admin_conninfo: str, services: Iterable[str], sagas: int) -> tuple[Counted, Heaviest]:
    """Per service (its database), since the last `reset`: statements and transactions per saga, and the
    statements sent most often (where a round trip could be saved)."""
    services = list(services)
    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as db:
        cursor = await db.execute(
            "SELECT d.datname, s.query, s.calls FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid"
            " WHERE s.userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        rows = await cursor.fetchall()
    return per_saga(rows, services, sagas), heaviest(rows, services, sagas)


def per_saga(
    rows: Iterable[tuple[str, str, int]], services: Iterable[str], sagas: int
) -> dict[str, dict[str, float]]:
    """(database, statement text, calls) rows → per service: statements (every one a round trip,
    BEGIN and COMMIT included) and transactions (BEGINs) per saga, one decimal."""
    counted: dict[str, dict[str, int]] = {
        service: {"statements": 0, "transactions": 0} for service in services
    }
    for database, query, calls in rows:
        figures = counted.get(database)
        if figures is None:
            continue
        figures["statements"] += calls
        # `BEGIN ISOLATION LEVEL …` too: psycopg names the level once SQLAlchemy has set it on a pooled
        # connection (after an autocommit use, it sets the engine's default back).
        if query.upper().split()[:1] == [_TRANSACTION_START]:
            figures["transactions"] += calls
    return {service: _per(figures, sagas) for service, figures in counted.items()}


def heaviest(
    rows: Iterable[tuple[str, str, int]], services: Iterable[str], sagas: int, limit: int = 10
) -> Heaviest:
    """(database, statement text, calls) rows → per service, its `limit` most frequent statements: calls
    per saga (two decimals) and the text on one line. PostgreSQL already folds constants into
    placeholders, so the same statement with other values counts as one."""
    found: dict[str, list[tuple[int, str]]] = {service: [] for service in services}
    for database, query, calls in rows:
        if database in found:
            found[database].append((calls, " ".join(query.split())))
    return {
        service: [
            (round(calls / max(sagas, 1), 2), text) for calls, text in sorted(queries, reverse=True)[:limit]
        ]
        for service, queries in found.items()
    }


def _per(figures: Mapping[str, int], sagas: int) -> dict[str, float]:
    return {name: round(count / max(sagas, 1), 1) for name, count in figures.items()}


def total(per_service: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The services' statements and transactions per saga together."""
    return {
        name: round(sum(figures[name] for figures in per_service.values()), 1)
        for name in ("statements", "transactions")
    }
