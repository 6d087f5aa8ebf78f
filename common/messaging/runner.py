"""The consume-handle-commit runner every agent uses: each event applied exactly once, or parked.

For one Kafka message it decodes, and in ONE database transaction: checks that no earlier event of the
same order is parked, claims the event in the inbox (in the same statement, taking the locks its
handler needs: `ClaimLocks`), runs the handler (state change) and writes the events the handler emits
to the outbox. Then it wakes the outbox relay.

Under load the consumer hands it a batch: the messages that arrived while the previous batch was being
applied. A batch is applied the same way in one transaction, with one statement for the dead-letter
check and the inbox claims together and one for the outbox rows, so the per-transaction round trips are
paid once per batch. If anything in a batch needs more than that (an event to park, or one waiting
behind a parked one), the transaction is rolled back and the batch is applied one message at a time as
above.

What it never does is let an exception escape for an event it has not finished: Faust would acknowledge
that event and commit past it (faust-streaming #315, robinhood/faust#604). Instead:
- transient failures (database or network down) are retried in place with backoff, holding the partition;
- permanent failures (undecodable, unknown type or version, a handler's DomainError, or any
  other bug) park the message as a dead letter with the reason, and the next message flows.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import pg
from common.db import is_transient_database_error, reading
from common.errors import Conflict, DomainError, NotFound
from common.events import DecodedEvent, Envelope, EventDecodeError, decode_event
from common.messaging import dead_letters
from common.messaging.consume_spans import NO_SPANS, ConsumeSpans
from common.messaging.dead_letters import RawMessage
from common.messaging.inbox import claim_event, claim_in_sequence, count_duplicate
from common.messaging.outbox import enqueue_statement
from common.messaging.tables import MessagingTables
from common.retry import Backoff
from common.tenancy import qualified
from common.tracing import Tracing
from common.write_health import DatabaseWrites

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Effects:
    """What a handler decided and has not written yet: the events to emit, and its last writes.

    The runner runs `writes` and the outbox rows of `events` as one statement (`pg.execute_together`),
    a round trip fewer on every event than a handler that writes its own and leaves the outbox to a
    statement of its own. So `writes` follow execute_together's rule: independent of each other, and
    none reads or writes the outbox. `committed` runs once the transaction has committed, never for
    one rolled back or retried: what counts a change only when it is durable (a saga's duration).
    """

    events: Sequence[Envelope]
    writes: Sequence[pg.Statement] = ()
    committed: Sequence[Callable[[], None]] = ()


Handler = Callable[[AsyncConnection, DecodedEvent], Awaitable[Sequence[Envelope] | Effects]]
"""Applies one event inside the given transaction and returns the events to emit (or its Effects)."""

BatchHandler = Callable[[AsyncConnection, Sequence[DecodedEvent]], Awaitable[Sequence[Envelope] | Effects]]
"""Applies several events, in order, inside the given transaction and returns the events to emit (or
their Effects).

Optional: a service whose handlers can share their reads and writes across events gives one, and it
must have the same effect as calling the service's handlers one by one.
"""

ClaimLocks = Callable[[Sequence[Envelope]], pg.AdvisoryLocks | None]
"""The advisory locks the handlers need held before they read, for the events of one transaction (None:
none). The runner takes them with the inbox claim, the transaction's first statement, so a handler's
first read is a statement later, on a snapshot that sees whatever the lock's last holder committed.

Optional: a service whose handlers must exclude another writer (order's creation of an order and the
API's record of a cancel for it) gives one, and its handlers rely on the runner for those locks.
"""


class MessageOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    NOT_SUBSCRIBED = "not_subscribed"
    PARKED = "parked"
    PARKED_BEHIND = "parked_behind"


@dataclass
class RunnerStats:
    applied: int = 0
    duplicate: int = 0
    not_subscribed: int = 0
    parked: int = 0
    parked_behind: int = 0
    transient_retries: int = 0
    # Transactions that applied several events at once, and how many events they held.
    batches: int = 0
    batched_events: int = 0

    def count(self, outcome: MessageOutcome) -> None:
        name = outcome.value
        setattr(self, name, getattr(self, name) + 1)

    def outcomes(self) -> dict[str, int]:
        return {outcome.value: getattr(self, outcome.value) for outcome in MessageOutcome}


class _OneAtATime(Exception):
    """A batch holds a message that must be parked (or waits behind a parked one): apply it singly."""


class DeadLetterNotRetryable(Conflict):
    """An operator asked to retry a letter that is not parked, or that waits behind an older one."""

    code = "not_retryable"


class EventRunner:
    def __init__(
        self,
        *,
        consumer: str,
        engine: AsyncEngine,
        tables: MessagingTables,
        handlers: Mapping[str, Handler],
        emit_topic: str,
        on_emitted: Callable[[], None] = lambda: None,
        on_commit: Callable[[], None] = lambda: None,
        batch_handler: BatchHandler | None = None,
        claim_locks: ClaimLocks | None = None,
        tracing: Tracing | None = None,
        writes: DatabaseWrites | None = None,
    ) -> None:
        """`on_emitted` runs after a commit that wrote events to the outbox (the relay's wake: a pass
        after a commit that wrote none would find nothing); `on_commit` after every commit that applied
        events (workers that act on what the handlers wrote)."""
        self.consumer = consumer
        self._engine = engine
        self._tables = tables
        self._handlers = handlers
        self._batch_handler = batch_handler
        self._claim_locks: ClaimLocks = claim_locks or (lambda envelopes: None)
        self._emit_topic = emit_topic
        self._on_emitted = on_emitted
        self._on_commit = on_commit
        self._tracing = tracing or Tracing.off()
        self._writes = writes or DatabaseWrites()  # what readiness learns of failing writes
        self.stats = RunnerStats()

    async def process(self, message: RawMessage) -> MessageOutcome:
        """Apply one message exactly once or park it. Returns only when that is done and committed."""
        spans = self._spans([message])
        outcome: MessageOutcome | None = None
        try:
            outcome = await self._process(message, spans)
            return outcome
        finally:
            spans.end([message], None if outcome is None else [outcome])

    async def _process(self, message: RawMessage, spans: ConsumeSpans) -> MessageOutcome:
        outcome = await self._retry_transient(lambda: self._apply_or_park(message, None, spans))
        self.stats.count(outcome)
        return outcome

    def _spans(self, messages: Sequence[RawMessage]) -> ConsumeSpans:
        return ConsumeSpans(self._tracing, self.consumer, messages) if self._tracing.enabled else NO_SPANS

    async def process_batch(self, messages: Sequence[RawMessage]) -> list[MessageOutcome]:
        """Apply consecutive messages exactly once each, in order; returns when all are committed.

        The outcome of every message is the one `process` would give it: the batch transaction is only
        a cheaper way to reach the same result, and falls back to `process` whenever it cannot.
        """
        if len(messages) == 1:
            return [await self.process(messages[0])]
        spans = self._spans(messages)
        outcomes: list[MessageOutcome] | None = None
        try:
            outcomes = await self._process_batch(messages, spans)
            return outcomes
        finally:
            spans.end(messages, outcomes)

    async def _process_batch(
        self, messages: Sequence[RawMessage], spans: ConsumeSpans
    ) -> list[MessageOutcome]:
        try:
            outcomes = await self._retry_transient(lambda: self._apply_batch(messages, spans))
        except _OneAtATime as fallback:
            log.info("%s: batch of %d applied one at a time: %s", self.consumer, len(messages), fallback)
            return [await self._process(message, spans) for message in messages]
        for outcome in outcomes:
            self.stats.count(outcome)
        self.stats.batches += 1
        self.stats.batched_events += len(messages)
        return outcomes

    async def retry_dead_letter(self, dead_letter_id: int) -> list[tuple[int, MessageOutcome]]:
        """Re-run a parked letter, then the letters of the same order parked behind it, oldest first.

        Stops at the first letter that fails again (it stays parked with the new reason), so the order's
        events are still applied in sequence.
        """
        async with reading(self._engine) as conn:
            row = await dead_letters.load(conn, self._tables.dead_letters, dead_letter_id)
        if row is None:
            raise NotFound(f"dead letter {dead_letter_id} not found")
        if row.status != dead_letters.PARKED:
            raise DeadLetterNotRetryable(f"dead letter {dead_letter_id} is not parked")
        queue = [dead_letter_id]
        if row.order_id is not None:
            async with reading(self._engine) as conn:
                queue = await dead_letters.parked_behind(
                    conn, self._tables.dead_letters, self.consumer, row.order_id
                )
            if queue[0] != dead_letter_id:
                raise DeadLetterNotRetryable(
                    f"dead letter {dead_letter_id} waits behind dead letter {queue[0]} of the same order; "
                    "retry that one first"
                )
        results: list[tuple[int, MessageOutcome]] = []
        for letter_id in queue:
            outcome = await self._retry_transient(partial(self._retry_one, letter_id))
            results.append((letter_id, outcome))
            if outcome in (MessageOutcome.PARKED, MessageOutcome.PARKED_BEHIND):
                break
        return results

    async def _retry_one(self, letter_id: int) -> MessageOutcome:
        async with reading(self._engine) as conn:
            row = await dead_letters.load(conn, self._tables.dead_letters, letter_id)
        message = RawMessage(
            topic=row.topic,
            partition=row.partition,
            offset=row.offset,
            key=row.key.encode() if row.key is not None else None,
            value=row.value,
        )
        spans = self._spans([message])  # the operator's request is the parent
        outcome: MessageOutcome | None = None
        try:
            outcome = await self._apply_or_park(message, letter_id, spans)
            return outcome
        finally:
            spans.end([message], None if outcome is None else [outcome])

    async def _retry_transient(self, work: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(initial=0.05, maximum=5.0)
        while True:
            try:
                return await work()
            except Exception as error:
                if not is_transient_database_error(error):
                    raise
                self._writes.failed(error)
                self.stats.transient_retries += 1
                delay = backoff.next_delay()
                log.warning("%s: transient failure, retrying in %.2fs: %r", self.consumer, delay, error)
                await asyncio.sleep(delay)

    async def _apply_or_park(
        self, message: RawMessage, retrying: int | None, spans: ConsumeSpans
    ) -> MessageOutcome:
        try:
            decoded = spans.decoded(message, decode_event(message.value, topic=message.topic))
        except EventDecodeError as error:
            return await self._park(message, f"undecodable: {error}", None, retrying)
        handler = self._handlers.get(decoded.type)
        if handler is None:
            # An event type this service does not react to (e.g. OrderCompleted for payment).
            if retrying is not None:
                await self._resolve(retrying, dead_letters.RETRIED)
            return MessageOutcome.NOT_SUBSCRIBED
        try:
            return await self._apply(message, decoded, handler, retrying, spans)
        except Exception as error:
            if is_transient_database_error(error):
                raise
            reason = (
                f"rejected: {error}"
                if isinstance(error, DomainError)
                else f"handler error: {''.join(traceback.format_exception_only(error)).strip()}"
            )
            if not isinstance(error, DomainError):
                log.exception(
                    "%s: handler failed for %s %s", self.consumer, decoded.type, decoded.envelope.event_id
                )
            return await self._park(message, reason, decoded, retrying)

    async def _apply(
        self,
        message: RawMessage,
        decoded: DecodedEvent,
        handler: Handler,
        retrying: int | None,
        spans: ConsumeSpans,
    ) -> MessageOutcome:
        tables = self._tables
        envelope = decoded.envelope
        async with self._engine.begin() as conn:
            if retrying is None:
                claim = await claim_in_sequence(
                    conn,
                    tables.inbox,
                    tables.dead_letters,
                    self.consumer,
                    [envelope],
                    self._claim_locks([envelope]),
                )
                if claim.blocked_by is not None:
                    await dead_letters.park(
                        conn,
                        tables.dead_letters,
                        consumer=self.consumer,
                        message=message,
                        error=f"waiting behind dead letter {claim.blocked_by} of the same order",
                        order_id=envelope.order_id,
                        event_id=envelope.event_id,
                        event_type=envelope.type,
                        blocked_by=claim.blocked_by,
                    )
                    return MessageOutcome.PARKED_BEHIND
                claimed = envelope.event_id in claim.claimed
            else:
                await dead_letters.mark(conn, tables.dead_letters, retrying, dead_letters.RETRIED)
                claimed = await claim_event(conn, tables.inbox, self.consumer, envelope)
                locks = self._claim_locks([envelope])
                if claimed and locks is not None:
                    await locks.take(conn)  # an operator's retry: rare
            if not claimed:
                await count_duplicate(conn, tables.counters, self.consumer)
                return MessageOutcome.DUPLICATE
            effects = _effects(await handler(conn, decoded))
            await self._save(conn, effects, spans)
        self._after_commit(effects)
        return MessageOutcome.APPLIED

    async def _apply_batch(self, messages: Sequence[RawMessage], spans: ConsumeSpans) -> list[MessageOutcome]:
        outcomes = [MessageOutcome.NOT_SUBSCRIBED] * len(messages)
        work: list[tuple[int, DecodedEvent, Handler]] = []
        for index, message in enumerate(messages):
            try:
                decoded = spans.decoded(message, decode_event(message.value, topic=message.topic))
            except EventDecodeError as error:
                raise _OneAtATime(f"undecodable message at offset {message.offset}") from error
            handler = self._handlers.get(decoded.type)
            if handler is not None:
                work.append((index, decoded, handler))
        if not work:
            return outcomes  # nothing this service reacts to: no transaction at all
        tables = self._tables
        effects = Effects(events=())
        async with self._engine.begin() as conn:
            envelopes = [decoded.envelope for _, decoded, _ in work]
            claim = await claim_in_sequence(
                conn,
                tables.inbox,
                tables.dead_letters,
                self.consumer,
                envelopes,
                self._claim_locks(envelopes),
            )
            if claim.blocked_by is not None:
                raise _OneAtATime("an order in the batch has a parked event")
            claimed = claim.claimed
            duplicates = 0
            to_apply: list[tuple[DecodedEvent, Handler]] = []
            for index, decoded, handler in work:
                event_id = decoded.envelope.event_id
                if event_id not in claimed:
                    outcomes[index] = MessageOutcome.DUPLICATE
                    duplicates += 1
                    continue
                claimed.discard(event_id)  # a second copy later in this batch is a duplicate
                to_apply.append((decoded, handler))
                outcomes[index] = MessageOutcome.APPLIED
            try:
                if self._batch_handler is not None and to_apply:
                    effects = _effects(await self._batch_handler(conn, [decoded for decoded, _ in to_apply]))
                else:
                    effects = await self._apply_in_turn(conn, to_apply)
                await self._save(conn, effects, spans)  # a handler's writes fail here, not in the handler
            except Exception as error:
                if is_transient_database_error(error):
                    raise
                raise _OneAtATime(f"a handler failed: {error!r}") from error
            if duplicates:
                await count_duplicate(conn, tables.counters, self.consumer, duplicates)
        if to_apply:
            self._after_commit(effects)
        return outcomes

    @staticmethod
    async def _apply_in_turn(
        conn: AsyncConnection, to_apply: Sequence[tuple[DecodedEvent, Handler]]
    ) -> Effects:
        """Handlers one by one in one transaction: each one's writes run before the next handler reads."""
        events: list[Envelope] = []
        committed: list[Callable[[], None]] = []
        for decoded, handler in to_apply:
            effects = _effects(await handler(conn, decoded))
            await pg.execute_together(conn, effects.writes)
            events.extend(effects.events)
            committed.extend(effects.committed)
        return Effects(events=events, committed=committed)

    async def _save(self, conn: AsyncConnection, effects: Effects, spans: ConsumeSpans) -> None:
        """The handler's last writes and the outbox rows of its events, as one statement."""
        statements = list(effects.writes)
        if effects.events:
            traces = spans.traces_for(effects.events)
            statements.append(
                enqueue_statement(self._tables.outbox, self._emit_topic, effects.events, traces)
            )
        await pg.execute_together(conn, statements)

    def _after_commit(self, effects: Effects) -> None:
        self._writes.committed()
        for committed in effects.committed:
            committed()
        if effects.events:
            self._on_emitted()
        self._on_commit()

    async def _park(
        self, message: RawMessage, reason: str, decoded: DecodedEvent | None, retrying: int | None
    ) -> MessageOutcome:
        table = self._tables.dead_letters
        async with self._engine.begin() as conn:
            if retrying is not None:
                await dead_letters.record_failed_retry(conn, table, retrying, reason)
            else:
                await dead_letters.park(
                    conn,
                    table,
                    consumer=self.consumer,
                    message=message,
                    error=reason,
                    order_id=decoded.order_id if decoded else _saga_of_key(message.key_text),
                    event_id=decoded.envelope.event_id if decoded else None,
                    event_type=decoded.type if decoded else None,
                )
        log.warning(
            "%s: parked %s[%d]@%d: %s",
            self.consumer,
            message.topic,
            message.partition,
            message.offset,
            reason,
        )
        return MessageOutcome.PARKED

    async def _resolve(self, letter_id: int, status: str) -> None:
        async with self._engine.begin() as conn:
            await dead_letters.mark(conn, self._tables.dead_letters, letter_id, status)


def _effects(result: Sequence[Envelope] | Effects) -> Effects:
    return result if isinstance(result, Effects) else Effects(events=result)


def _saga_of_key(key: str | None) -> str | None:
    """The order an undecodable message belongs to, from its Kafka key (a saga id; a key from before
    owners is `legacy`'s, as its decoded events would be), so later events of it park behind it."""
    return None if key is None else qualified(key)
