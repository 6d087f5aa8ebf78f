"""Database plumbing shared by the services: metadata naming, engines, transient-error detection."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import psycopg
from sqlalchemy import MetaData, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# Stable constraint names, so Alembic migrations can drop and alter what they created.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An async engine on psycopg 3.

    The pool keeps `pool_size` connections open and opens up to as many again for bursts, closing those
    when they come back to a full pool. Under load the services hold more than ten at once (payment's
    concurrent checkouts, the runner, relay and workers): with ten kept, payment opened and closed four
    connections a second, each a new server process and statements prepared again.

    No `pool_pre_ping`: it costs a round trip on every checkout, about a third of the client CPU of a
    short transaction (measured: 2.0 ms with it, 1.3 ms without). After the server restarts, the first
    statement on a dropped connection fails instead; SQLAlchemy then discards every pooled connection,
    the runner retries (a transient error) and the HTTP edge answers 503, which clients retry.
    """
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


def reading(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A connection for reads whose transaction ends with COMMIT, where `engine.connect()` rolls back.

    psycopg forgets every statement it prepared on a connection at each ROLLBACK (it sends DEALLOCATE
    ALL), so after a read through `connect()` the pooled connection runs the hot path's statements
    unprepared — parsed and planned again — until it has prepared them anew. A COMMIT costs the same
    round trip and keeps them.
    """
    return engine.begin()


def is_transient_database_error(error: BaseException) -> bool:
    """True when retrying the same work later can succeed: the server or the connection went away.

    Constraint violations and programming errors are not transient: retrying them repeats the failure.
    Errors come wrapped by SQLAlchemy (`common.pg` wraps its own the same way); a bare psycopg error is
    classified by the same rule.
    """
    if isinstance(error, psycopg.Error):
        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return isinstance(error, exc.OperationalError | exc.InterfaceError)
    return isinstance(error, exc.DisconnectionError | exc.TimeoutError | ConnectionError | OSError)
