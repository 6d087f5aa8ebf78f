"""A unit of work for every write outside the event runner (an HTTP command, a timer, a worker).

    async with context.unit_of_work() as work:
        ... = await something(work.conn)      # the change, in one transaction
        work.emit(events)                     # the events it causes

On a clean exit the emitted events are written to the outbox inside the same transaction, the
transaction commits, and then the relay is woken so they leave at once. On an exception nothing is
written and nothing is woken. Writing the outbox and waking the relay live here, once: a forgotten wake
would cost up to a second of latency with no error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import pg
from common.db import autocommit
from common.events import Envelope
from common.messaging.outbox import enqueue, enqueue_statement
from common.tracing import Tracing


class UnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        topic: str,
        on_commit: Callable[[], None],
        tracing: Tracing | None = None,
        *,
        one_statement: bool = False,
    ) -> None:
        """`one_statement`: the work is a single statement (its events in it, `emit_as_statement`), run
        in autocommit: all or nothing on its own, and one round trip, with no BEGIN and no COMMIT. Its
        events cannot be `emit`ted (they would be a second statement, committed apart)."""
        self._one_statement = one_statement
        self._engine = engine
        self._tracing = tracing or Tracing.off()
        self._outbox = outbox
        self._topic = topic
        self._on_commit = on_commit  # wakes the relay (and whatever else acts on a commit)
        self._transaction: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None
        self._events: list[Envelope] = []
        self._traces: list[str | None] = []  # each event's, when traces are on (common/tracing.py)
        self._written_by_caller = False

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    def emit(self, events: Iterable[Envelope], traces: Sequence[str | None] = ()) -> None:
        """Events to publish if, and only if, this unit of work commits. `traces` names each one's trace
        (the saga's, stored with the work this continues); without one, the current span's."""
        assert not self._one_statement, "a one-statement unit of work emits in its statement"
        events = list(events)
        self._events.extend(events)
        self._traces.extend(self._traces_of(events, traces))

    def emit_as_statement(
        self, events: Sequence[Envelope], traces: Sequence[str | None] = (), *, only_if: str | None = None
    ) -> pg.Statement:
        """`emit`, with the outbox write handed back to run together with the caller's own writes in one
        statement (`pg.execute_together`, on the hot path); the relay is woken after commit all the same.
        `only_if`: written only if that `WITH` query of the statement returned a row (`enqueue_statement`)."""
        self._written_by_caller = self._written_by_caller or bool(events)
        traced = self._traces_of(events, traces)
        return enqueue_statement(self._outbox, self._topic, events, traced, only_if=only_if)

    def _traces_of(self, events: Sequence[Envelope], traces: Sequence[str | None]) -> list[str | None]:
        """Each event's trace: the one given for it, else the current span's; none when traces are off."""
        if not self._tracing.enabled:
            return []
        current = self._tracing.current()
        stored = [*traces, *[None] * (len(events) - len(traces))]
        return [trace or current for trace in stored[: len(events)]]

    async def __aenter__(self) -> UnitOfWork:
        self._transaction = autocommit(self._engine) if self._one_statement else self._engine.begin()
        self._conn = await self._transaction.__aenter__()
        self._events, self._traces, self._written_by_caller = [], [], False
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._transaction is not None and self._conn is not None
        transaction, conn = self._transaction, self._conn
        self._transaction = self._conn = None
        emitted = error is None and bool(self._events)
        if emitted:
            try:
                await enqueue(conn, self._outbox, self._topic, self._events, self._traces)
            except BaseException as failure:
                await transaction.__aexit__(type(failure), failure, failure.__traceback__)
                raise
        await transaction.__aexit__(kind, error, trace)
        if error is None and (emitted or self._written_by_caller):
            self._on_commit()
