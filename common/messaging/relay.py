"""The outbox relay: publishes committed outbox rows to Kafka, in order, and marks them published.

Rules it keeps, and why:
- One relay of a service publishes at a time (a transaction-scoped advisory lock). Two relays taking
  disjoint batches could publish two events of one order out of order.
- Every pass reads *all* unpublished rows in id order instead of remembering the last id it saw: a
  transaction that took a lower id but committed later is still found on the next pass.
- Rows are marked published only after the broker acknowledged them (idempotent producer, acks=all).
  A broker outage leaves them in the table; the relay retries with backoff and the outbox drains later.
- It is woken right after each commit that wrote rows, and sweeps on a slow timer for anything else
  (for example rows written by another process of the same service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common import pg
from common.db import reading
from common.retry import Backoff

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[tuple[str, str, bytes]]], Awaitable[None]]
"""Sends (topic, key, value) messages in the given order and returns once the broker acknowledged all."""


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
        keep_published: timedelta = timedelta(hours=1),
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._publish = publish
        self._lock_id = lock_id
        self._batch_size = batch_size
        self._sweep_seconds = sweep_seconds
        self._keep_published = keep_published
        self._wakeup = asyncio.Event()
        self.published_total = 0

    def wake(self) -> None:
        """Tell the relay there is something to publish now (called after a commit)."""
        self._wakeup.set()

    async def run_forever(self) -> None:
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._sweep_seconds)
            self._wakeup.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; returns how many were published (0 if another relay holds
        the lock or nothing is pending)."""
        table = self._outbox.name
        async with self._engine.begin() as conn:
            # The lock is taken in the same statement as the read (an uncorrelated subquery runs once,
            # before the scan): a pass costs one round trip fewer, and it still reads nothing unless it
            # holds the lock.
            rows = await pg.fetch_all(
                conn,
                f"SELECT id, topic, key, value FROM {table}"
                " WHERE published_at IS NULL AND (SELECT pg_try_advisory_xact_lock(%s::bigint))"
                " ORDER BY id LIMIT %s",
                (self._lock_id, self._batch_size),
            )
            if not rows:
                return 0
            await self._publish([(topic, key, value) for _, topic, key, value in rows])
            await pg.execute(
                conn,
                f"UPDATE {table} SET published_at = now() WHERE id = ANY(%s::bigint[])",
                ([row_id for row_id, *_ in rows],),
            )
        self.published_total += len(rows)
        return len(rows)

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

    async def pending_count(self) -> int:
        async with reading(self._engine) as conn:
            count = await conn.scalar(
                select(func.count()).select_from(self._outbox).where(self._outbox.c.published_at.is_(None))
            )
        return int(count or 0)
