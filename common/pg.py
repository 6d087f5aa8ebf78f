"""Plain SQL on the psycopg connection under a SQLAlchemy transaction, for the per-event hot path.

SQLAlchemy builds and runs every statement of the services except a few on the per-event path. There,
its execution machinery (the greenlet hand-off, execution context, cache key, result processing) cost
more client CPU than psycopg and PostgreSQL together (bench/README.md, "Where the time goes"). These
helpers run fixed SQL text on the same connection, inside the caller's transaction, so the statement
commits or rolls back with everything the caller does through SQLAlchemy.

Statements that write one row per item take one array per column and `unnest` them: one statement and
one execution whatever the batch size (executemany would send one execution per row), and a fixed text,
which psycopg prepares on the server after a few uses. A condition that must match a partial index
(`status = 'parked'`, `published_at IS NULL`) stays a literal in the text: a prepared statement's generic
plan cannot use the index for a parameter.

Those arrays go to the server in PostgreSQL's binary format (`binary_arrays`): an event's bytes, a JSON
text or a UUID is sent as it is, with its length, where the text format writes each element quoted and
escaped, in Python, one regular-expression substitution per quote or backslash.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection

from common.db import without_values

# A parameter cast to an array type: `%s::text[]`, `%(keys)s::uuid[]`.
_ARRAY_PARAMETER = re.compile(r"%(\([a-z_0-9]+\))?s(?=::[a-z_0-9]+\[\])")

# Positional (`%s`) or named (`%(name)s`) parameters: a statement with many takes them by name.
Params = tuple[Any, ...] | Mapping[str, Any]


@dataclass(frozen=True)
class Statement:
    """A statement and its parameters, to run later or together with others (`execute_together`)."""

    sql: str
    params: Params


@dataclass(frozen=True)
class AdvisoryLocks:
    """Transaction-scoped advisory locks of one class (PostgreSQL's two-int4-key form), held until the
    transaction ends. Keys are taken in ascending order, so two transactions that take several never
    deadlock (`of` sorts them)."""

    lock_class: int
    keys: tuple[int, ...]

    # One row per key, in the array's order: `unnest` yields them in it.
    SQL: ClassVar[str] = "SELECT pg_advisory_xact_lock(%s::int, key) FROM unnest(%s::int[]) AS key"

    @classmethod
    def of(cls, lock_class: int, keys: Iterable[int]) -> AdvisoryLocks:
        return cls(lock_class, tuple(sorted(set(keys))))

    @property
    def params(self) -> tuple[int, list[int]]:
        return self.lock_class, list(self.keys)

    async def take(self, conn: AsyncConnection) -> None:
        """Take them in a statement of their own (a statement that takes them along uses `SQL`)."""
        await execute(conn, self.SQL, self.params)


def generic_plans(*, transaction_only: bool) -> str:
    """An SQL expression that makes PostgreSQL plan each prepared statement once, for the rest of the
    transaction or for the session, to put in a statement the caller sends anyway (`SET` would be a
    round trip of its own). It is never NULL (`set_config` returns the value it set).

    PostgreSQL's default (`plan_cache_mode = auto`) keeps planning a prepared statement for its
    parameters while its generic plan looks costlier, and the hot path's statements take arrays
    (`unnest`, `= ANY`), whose length a generic plan must guess: order's writes were planned on every
    execution, 0.85-0.91 ms each, more than twice their execution (bench/README.md, "Plans made once").
    A generic plan is safe there by the rule above: a condition a partial index needs is a literal.
    """
    return f"set_config('plan_cache_mode', 'force_generic_plan', {'true' if transaction_only else 'false'})"


@functools.lru_cache(maxsize=1024)
def binary_arrays(sql: str) -> str:
    """`sql` with its array parameters (`%s::<type>[]`) sent in binary (`%b`), the others as they were.

    psycopg dumps a list in text as `{"…","…"}`, in Python, quoting each element and escaping each quote
    and backslash in it by a regular-expression substitution: an event's bytes (hex, with its leading
    backslash escaped) took 15 us an element, a line list's JSON 41 us, against 3 us in binary, and the
    order service spent 7 % of its CPU at 40 sagas/s there (bench/README.md, "Arrays in binary"). Binary
    changes nothing else: psycopg types a list by its elements either way (and refuses mixed ones either
    way), and the cast in the text still gives the server the column's type.
    """
    return _ARRAY_PARAMETER.sub(lambda match: f"%{match.group(1) or ''}b", sql)


def driver_connection(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under `conn`; what runs on it is part of `conn`'s transaction.

    Read from the synchronous connection SQLAlchemy already checked out (`get_raw_connection` would
    spend a greenlet hand-off on every statement to get the same object).
    """
    driver = conn.sync_connection.connection.driver_connection if conn.sync_connection else None
    assert isinstance(driver, psycopg.AsyncConnection), "a connected engine on the psycopg driver"
    return driver


async def execute(conn: AsyncConnection, sql: str, params: Params) -> int:
    """Run one statement; returns the number of rows it affected."""
    async with _cursor(conn, sql, params) as cursor:
        return cursor.rowcount


async def execute_together(conn: AsyncConnection, statements: Sequence[Statement]) -> None:
    """Run writes as ONE statement, each a data-modifying `WITH` query of it: one execution for all.

    Only for writes that are independent of each other: PostgreSQL runs them on one snapshot in no set
    order, and none of them sees the rows another one writes. So they must not write the same rows nor
    read what the others write (writes to different tables, or to disjoint rows of one, qualify).
    """
    if len(statements) == 1:
        await execute(conn, statements[0].sql, statements[0].params)
    elif statements:
        parts = ", ".join(f"write_{index} AS ({s.sql})" for index, s in enumerate(statements))
        await execute(conn, f"WITH {parts} SELECT", tuple(p for s in statements for p in s.params))


async def fetch_all(conn: AsyncConnection, sql: str, params: Params) -> list[tuple[Any, ...]]:
    """Run one statement and return its rows as tuples."""
    async with _cursor(conn, sql, params) as cursor:
        return await cursor.fetchall()


async def fetch_dicts(conn: AsyncConnection, sql: str, params: Params) -> list[dict[str, Any]]:
    """Run one statement and return its rows as dicts keyed by column name."""
    async with _cursor(conn, sql, params, row_factory=dict_row) as cursor:
        return await cursor.fetchall()


@contextlib.asynccontextmanager
async def _cursor(
    conn: AsyncConnection, sql: str, params: Params, row_factory: Any = None
) -> AsyncIterator[psycopg.AsyncCursor[Any]]:
    """A cursor that has run `sql`. psycopg's errors leave as SQLAlchemy's (`OperationalError`,
    `IntegrityError`…, the original in `.orig`), like those of every other statement, so callers classify
    and catch one kind of error whichever way a statement ran."""
    driver = driver_connection(conn)
    cursor = driver.cursor(row_factory=row_factory) if row_factory else driver.cursor()
    try:
        async with cursor:
            await cursor.execute(binary_arrays(sql), params)
            yield cursor
    except psycopg.Error as error:
        without_values(error)  # the rule of common/db.py: no value in an error's text
        raise exc.DBAPIError.instance(sql, params, error, psycopg.Error, hide_parameters=True) from error
