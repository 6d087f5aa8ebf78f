"""The outbox relay: publishes committed outbox rows to Kafka, in order, and marks them published.

Rules it keeps, and why:
- One relay of a service publishes at a time: the one that holds the service's advisory lock on its own
  connection. Two relays taking disjoint batches could publish two events of one order out of order.
  The lock is the session's, held while the connection lives, and that connection runs in autocommit:
  a pass is one statement (below) where a transaction-scoped lock took four (with BEGIN and COMMIT), on
  every hop of every saga. A relay that dies loses the connection and with it the lock;
  one that fails closes its connection for the same reason, so a standby relay takes over. One cut off
  from the database cannot close anything: the server ends its session once it has been silent for
  `_LEADER_SILENT_SECONDS` (`idle_session_timeout`), which a live leader never is.
- Every pass reads *all* unpublished rows in id order instead of remembering the last id it saw: a
  transaction that took a lower id but committed later is still found on the next pass.
- Rows are marked published only after the broker acknowledged them (idempotent producer, acks=all).
  A broker outage leaves them in the table; the relay retries with backoff and the outbox drains later.
- A pass is one statement: the mark of the rows the previous pass published and the read of the next
  rows, together. The mark waits for the next pass, which comes with the next commit or within
  `mark_within` seconds, so on every hop of every saga the relay sends one statement, not two. Marked
  late, a row still records when the broker acknowledged it (`published_at`, what the hop figures and
  the outbox's age are measured from), and the relay's own backlog leaves out what it published. The
  price: a relay that loses the lead before its next pass leaves those rows to the next leader, which
  publishes them again, as it would a row whose mark failed; consumers apply an event once (the inbox).
- It is woken right after each commit that wrote rows, and sweeps on a slow timer for anything else
  (for example rows written by another process of the same service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from opentelemetry.trace import SpanKind
from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import pg
from common.db import reading
from common.retry import Backoff
from common.tracing import TRACEPARENT, Tracing, traceparent_of

log = logging.getLogger(__name__)

# The longest the leading relay's session stays silent before the server ends it, releasing the lock.
_LEADER_SILENT_SECONDS = 10.0


class OutgoingMessage(NamedTuple):
    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


Publish = Callable[[Sequence[OutgoingMessage]], Awaitable[None]]
"""Sends the messages in the given order and returns once the broker acknowledged all."""


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        outbox: Table,
        publish: Publish,
        lock_id: int,
        batch_size: int = 500,
        sweep_seconds: float = 1.0,
        mark_within: float = 0.2,
        keep_published: timedelta = timedelta(hours=1),
        tracing: Tracing | None = None,
    ) -> None:
        """`mark_within`: the longest rows stay published but unmarked while no commit wakes the relay
        (their mark rides with the next pass's read)."""
        self._engine = engine
        self._outbox = outbox
        self._publish = publish
        self._lock_id = lock_id
        self._batch_size = batch_size
        self._sweep_seconds = sweep_seconds
        self._mark_within = mark_within
        self._keep_published = keep_published
        self._tracing = tracing or Tracing.off()
        self._wakeup = asyncio.Event()
        self._leader: AsyncConnection | None = None
        # Rows the broker acknowledged that the next pass marks: id → when (time.monotonic()).
        self._unmarked: dict[int, float] = {}
        self.published_total = 0

    @property
    def leading(self) -> bool:
        """Whether this relay holds its service's lock (the others of the service stand by)."""
        return self._leader is not None

    def wake(self) -> None:
        """Tell the relay there is something to publish now (called after a commit)."""
        self._wakeup.set()

    async def run_forever(self) -> None:
        try:
            await self._run()
        finally:
            await self._mark_before_leaving()
            await self.close()

    async def _run(self) -> None:
        backoff = Backoff(initial=0.1, maximum=5.0)
        passes = 0
        while True:
            try:
                while await self.publish_pending() == self._batch_size:
                    pass  # a full batch: there may be more right away
                backoff.reset()
                passes += 1
                if passes % 600 == 0:
                    await self.delete_published()
            except Exception as error:
                delay = backoff.next_delay()
                log.warning("outbox relay failed, retrying in %.1fs: %r", delay, error)
                await asyncio.sleep(delay)
                continue
            # Rows left to mark: the next pass comes soon even if no commit wakes the relay.
            wait = self._mark_within if self._unmarked else self._sweep_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
            self._wakeup.clear()

    async def publish_pending(self) -> int:
        """Mark what the previous pass published and publish one batch of unpublished rows; returns how many
        were published (0 if another relay holds the lock or nothing is pending)."""
        conn = await self._leading_connection()
        if conn is None:
            return 0
        try:
            rows = await self._mark_and_read(conn, self._batch_size)
            if not rows:
                return 0
            if self._tracing.enabled:
                await self._publishing(conn, self._publish_traced(rows))
            else:
                messages = [OutgoingMessage(topic, key, value) for _, topic, key, value, *_ in rows]
                await self._publishing(conn, self._publish(messages))
        except BaseException:
            # Whatever failed (the broker, the database, a cancel mid-pass), give the lead up: the next
            # pass starts from a fresh connection, and meanwhile another relay may lead.
            await self.close()
            raise
        acknowledged = time.monotonic()
        self._unmarked.update((row_id, acknowledged) for row_id, *_ in rows)
        self.published_total += len(rows)
        return len(rows)

    async def _mark_and_read(self, conn: AsyncConnection, limit: int) -> list[tuple[Any, ...]]:
        """Mark the rows published since the last mark, each with the time the broker acknowledged it, and
        read up to `limit` unpublished rows in id order, in one statement. The read sees the table as it
        was before the mark, so it leaves the rows being marked out by id. A row another relay marked
        meanwhile (this one lost the lead and got it back) keeps its mark."""
        table = self._outbox.name
        now = time.monotonic()
        ids = list(self._unmarked)
        ages = [now - acknowledged for acknowledged in self._unmarked.values()]
        rows = await pg.fetch_all(
            conn,
            "WITH acked AS (SELECT * FROM unnest(%s::bigint[], %s::float8[]) AS acked(id, age)),"
            f" marked AS (UPDATE {table} SET published_at = now() - make_interval(secs => acked.age)"
            f" FROM acked WHERE {table}.id = acked.id AND {table}.published_at IS NULL)"
            f" SELECT id, topic, key, value, event_type, trace_context FROM {table}"
            " WHERE published_at IS NULL AND id NOT IN (SELECT id FROM acked) ORDER BY id LIMIT %s",
            (ids, ages, limit),
        )
        for row_id in ids:
            del self._unmarked[row_id]
        return rows

    async def _mark_before_leaving(self) -> None:
        """On the way out, mark what was published (a read of nothing, `_mark_and_read`), so the next
        leader does not publish it again; given up after a second (a database out of reach)."""
        if self._leader is None or not self._unmarked:
            return
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self._mark_and_read(self._leader, 0), timeout=1.0)

    async def _publishing(self, conn: AsyncConnection, publish: Awaitable[None]) -> None:
        """Wait for `publish`, pinging the leader's session meanwhile: a broker that is slow or away can
        hold a pass longer than the session may stay silent (`_LEADER_SILENT_SECONDS`)."""
        task = asyncio.ensure_future(publish)
        try:
            while not (await asyncio.wait({task}, timeout=_LEADER_SILENT_SECONDS / 3))[0]:
                await pg.execute(conn, "SELECT 1", ())
        finally:
            task.cancel()  # a ping failed, or this pass was cancelled: no publish goes on unwatched
        await task

    async def _publish_traced(self, rows: Sequence[Sequence[Any]]) -> None:
        """Publish with a `publish` span per event, the child of the span that wrote it, and that span's
        context in the message's `traceparent` header, so its consumer continues the saga's trace."""
        spans, messages = [], []
        for _, topic, key, value, event_type, trace_context in rows:
            span = self._tracing.start(
                f"publish {event_type}",
                parent=trace_context,
                kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
            )
            spans.append(span)
            parent = traceparent_of(span)
            headers = ((TRACEPARENT, parent.encode()),) if parent else ()
            messages.append(OutgoingMessage(topic, key, value, headers))
        try:
            await self._publish(messages)
        finally:
            for span in spans:
                if span is not None:
                    span.end()

    async def _leading_connection(self) -> AsyncConnection | None:
        """This relay's connection while it leads, or None when another relay of the service does."""
        if self._leader is not None:
            return self._leader
        conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # The leader's session ends by the server's timer once silent for `_LEADER_SILENT_SECONDS`:
            # a leader cut off from the database (packets dropped, no RST) leaves a session the server
            # cannot tell from a live one, and it would hold the lock until TCP gives up on it (hours,
            # and never behind a proxy that keeps its side open): no relay could lead, the outbox would
            # not drain. A live leader is never that silent (a pass a second, `_publishing`'s pings).
            # Its plans made once (`pg.generic_plans`): the mark's `id = ANY(...)` was planned on every
            # pass. Set only on the session that got the lock, which never goes back to the pool: the
            # others do.
            leads = await pg.fetch_all(
                conn,
                "SELECT CASE WHEN pg_try_advisory_lock(%s::bigint)"
                " THEN set_config('idle_session_timeout', %s, false) IS NOT NULL"
                f" AND {pg.generic_plans(transaction_only=False)} IS NOT NULL ELSE false END",
                (self._lock_id, f"{_LEADER_SILENT_SECONDS * 1000:.0f}"),
            )
        except BaseException:
            await _discard(conn)  # it may hold the lock: never back to the pool
            raise
        if not leads[0][0]:
            await conn.close()
            return None
        self._leader = conn
        return conn

    async def close(self) -> None:
        """Give the lead up: the connection is closed, not pooled, since the lock lives as long as it."""
        conn, self._leader = self._leader, None
        if conn is not None:
            await _discard(conn)

    async def delete_published(self) -> int:
        """Drop rows published longer ago than `keep_published` (kept a while for diagnosis)."""
        outbox = self._outbox
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(outbox).where(
                    outbox.c.published_at.is_not(None),
                    outbox.c.published_at < func.now() - self._keep_published,
                )
            )
        return result.rowcount or 0

    async def backlog(self) -> tuple[int, float]:
        """The unpublished rows, and how long the oldest has waited in seconds (0 when none), in one read:
        a relay that cannot publish (no leader, a broker down, a wedged producer) shows here first. Rows
        this relay published and has yet to mark are not counted."""
        outbox = self._outbox
        async with reading(self._engine) as conn:
            count, age = (
                await conn.execute(
                    select(
                        func.count(), func.extract("epoch", func.now() - func.min(outbox.c.created_at))
                    ).where(outbox.c.published_at.is_(None), outbox.c.id.not_in(list(self._unmarked)))
                )
            ).one()
        return int(count or 0), max(0.0, float(age or 0))

    async def oldest_pending_seconds(self) -> float:
        return (await self.backlog())[1]

    async def pending_count(self) -> int:
        return (await self.backlog())[0]


async def _discard(conn: AsyncConnection) -> None:
    """Close the connection for good (invalidated, so the pool opens a new one instead of reusing it)."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()
