"""Database plumbing shared by the services: metadata naming, engines, transient-error detection."""

from __future__ import annotations

from sqlalchemy import MetaData, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine on psycopg 3; `pool_pre_ping` turns a dead connection into a retry, not an error."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


def is_transient_database_error(error: BaseException) -> bool:
    """True when retrying the same work later can succeed: the server or the connection went away.

    Constraint violations and programming errors are not transient: retrying them repeats the failure.
    """
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return isinstance(error, exc.OperationalError | exc.InterfaceError)
    return isinstance(error, exc.DisconnectionError | exc.TimeoutError | ConnectionError | OSError)
