"""Database plumbing shared by the services: metadata naming, engines, transient-error detection, and
error text without values.

The rule for error text: a database error's message never carries a value of the statement — its
parameters are addresses, card tokens, customer ids — because it reaches logs and dead letters. So
engines hide the parameters (`hide_parameters=True`), and the server's own text is cut to its primary
message (no DETAIL "Key (token)=(tok_…)" or "Failing row contains (…)", no CONTEXT), in which every
quoted word that is not a schema name the server reported (table, column, constraint, type) becomes
"***" (`invalid input syntax for type integer: "***"`). The statement, the SQLSTATE and the names stay,
enough to find the cause; the values remain in the exception's `diag` for code that asks on purpose.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import psycopg
from sqlalchemy import Engine, MetaData, event, exc, make_url
from sqlalchemy.engine import ExceptionContext
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


# How a connection finds out that its server is gone when nothing says so (a partition, a host that
# vanished: packets dropped, no RST). Without these a connection waiting for an answer relies on TCP's
# retransmissions, backed off exponentially for up to ~15 min (`tcp_retries2`): after a 30 s cut the next
# retry came ~20 s after the repair, and with further cuts it fell into those too, so one such connection
# (the outbox relay's, holding the lead) stalled payment's sagas for minutes after the repair.
# - `tcp_user_timeout`: data sent and not acknowledged for 10 s aborts the connection (the statement fails
#   with an OperationalError, a transient error: the caller retries on a new connection).
# - keepalives: an idle connection, or one waiting for an answer, is probed after 5 s of silence and
#   dropped after 3 unanswered probes 2 s apart, so the pool does not keep dead connections.
# The server does not learn of it (it may sit behind a proxy, or just be idle), so a session that holds
# something is ended by the server's own timer: the relay's lock (common/messaging/relay.py), and a
# transaction left open by a connection cut mid-way (seen: "idle in transaction" for as long as the cut
# and after), whose row locks would block the retry of the same checkout or event. No transaction of the
# services waits long between its statements (what they await meanwhile, order's lookup of a payment,
# has a 2 s timeout), so one idle for 15 s has been abandoned. It was 60 s: order cut from its database
# for 30 s then took the per-order advisory locks (order/early_cancels.py) of the transactions the cut
# abandoned, and waited for them until 60 s after the cut began, 30 s past the repair (#27).
_SERVER_OPTIONS = "-c idle_in_transaction_session_timeout=15s"
_CONNECT_ARGS = {
    "connect_timeout": 5,
    "tcp_user_timeout": 10_000,  # ms
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


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
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=_connect_args(url),
        hide_parameters=True,
    )
    hide_values_in_errors(engine.sync_engine)
    return engine


def _connect_args(url: str) -> dict[str, object]:
    """`_CONNECT_ARGS`, the server options appended to those of the URL (a connect argument would
    replace the URL's `options`, such as the test schemas' `search_path`)."""
    given = make_url(url).query.get("options")
    given = given[-1] if isinstance(given, tuple) else given
    return {**_CONNECT_ARGS, "options": f"{given} {_SERVER_OPTIONS}" if given else _SERVER_OPTIONS}


def hide_values_in_errors(engine: Engine) -> None:
    """Make the errors of `engine`'s statements carry no value (the rule above); create the engine with
    `hide_parameters=True` too."""
    event.listen(engine, "handle_error", _without_values_in_message)


def _without_values_in_message(context: ExceptionContext) -> None:
    error = context.original_exception
    if not isinstance(error, psycopg.Error) or not without_values(error):
        return
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        # SQLAlchemy formatted its message from the driver's before this hook: format it again.
        wrapped.args = (f"({type(error).__module__}.{type(error).__name__}) {error}",)


# A double-quoted word of a server message, `""` inside it standing for a quote.
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')


def without_values(error: psycopg.Error) -> bool:
    """Cut the message of `error`, a server's error, to its primary text without values (in place:
    before anything prints it, so neither it nor a traceback that shows it carries one). False for an
    error that is not the server's (a failed connection), which holds no statement's value."""
    diag = error.diag
    if not diag.sqlstate or not diag.message_primary:
        return False
    names = {diag.schema_name, diag.table_name, diag.column_name, diag.constraint_name, diag.datatype_name}
    primary = _QUOTED.sub(lambda m: m[0] if m[1] in names else '"***"', diag.message_primary)
    error.args = (f"{primary} (SQLSTATE {diag.sqlstate})",)
    return True


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection on which every statement is a transaction of its own: one round trip each, with no
    BEGIN and no COMMIT around it. For reads (`reading`), and for a write that is one statement, which
    is all or nothing on its own.

    Not `engine.connect()` alone: it ends with a ROLLBACK, at which psycopg forgets every statement it
    prepared on the connection (it sends DEALLOCATE ALL), so the pooled connection would run the hot
    path's statements unprepared until it had prepared them anew. In autocommit there is no transaction
    to roll back, and psycopg sends nothing.
    """
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def reading(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A connection for reads, in autocommit (`autocommit`): each read one round trip (timers and probes
    read every few seconds on an idle platform). Under READ COMMITTED every statement of a transaction
    takes a snapshot of its own anyway, so a block of reads sees the same either way. It must not write:
    each write would commit alone."""
    return autocommit(engine)


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
