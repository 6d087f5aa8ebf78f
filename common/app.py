"""The app factory every service uses: a Faust worker wired to the runner, the relay and common endpoints.

A service brings its tables, the topics it reads, its handlers, its own HTTP views and timers; this
module adds what all three share — the consuming agent, the outbox relay task, health and readiness,
metrics, dead-letter operations and the OpenAPI document. Nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from common import shared_api
from common.config import Service, Settings
from common.db import create_engine, reading
from common.kafka import group_id, new_idempotent_producer, publish_in_order, replication_readiness
from common.messaging import dead_letters
from common.messaging.batches import consume_in_batches
from common.messaging.dead_letters import RawMessage
from common.messaging.inbox import forget_processed_before
from common.messaging.relay import OutboxRelay
from common.messaging.runner import BatchHandler, DeadLetterNotRetryable, EventRunner, Handler
from common.messaging.tables import MessagingTables
from common.messaging.unit_of_work import UnitOfWork
from common.metrics import render_metrics
from common.openapi import Route, build_openapi
from common.web import ApiError, JsonView, json_routing_errors, not_found, serve

log = logging.getLogger(__name__)

# How long a stopping worker waits for the event in hand before it exits without committing it.
_FINISH_ON_STOP_SECONDS = 15.0
# Exit code used when the worker had to abandon an event: a supervisor restarts it, Kafka redelivers.
EXIT_ABANDONED_EVENT = 75


@dataclass
class ServiceContext:
    """Everything a service's views, timers and handlers share at run time."""

    service: Service
    settings: Settings
    engine: AsyncEngine
    tables: MessagingTables
    relay: OutboxRelay
    runner: EventRunner
    producer: LazyProducer
    routes: list[Route] = field(default_factory=list)
    # Called after every consumer transaction that applied events (the relay first): workers that act on
    # what a handler wrote (delivery's sweep, payment's refunds) start at once instead of on their timer.
    commit_listeners: list[Callable[[], None]] = field(default_factory=list)

    @property
    def topic(self) -> str:
        """The one topic this service writes."""
        return self.service.value

    def unit_of_work(self) -> UnitOfWork:
        """A transaction for a write outside the runner: its events reach the outbox, then the relay."""
        return UnitOfWork(self.engine, self.tables.outbox, self.topic, self.relay.wake)


class LazyProducer:
    """The relay's producer, started on first use inside the worker's event loop."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = new_idempotent_producer(self._bootstrap_servers)
                await producer.start()
                self._producer = producer
            return self._producer

    async def publish(self, messages: Sequence[tuple[str, str, bytes]]) -> None:
        try:
            await publish_in_order(await self.get(), messages)
        except Exception:
            # After a broker outage an idempotent producer can stay wedged (OutOfOrderSequenceNumber,
            # aiokafka #1017). Start the next attempt with a fresh producer; rows stay in the outbox.
            await self.reset()
            raise

    async def reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def create_service(
    service: Service,
    settings: Settings,
    *,
    tables: MessagingTables,
    consumes: Sequence[str],
    handlers: Mapping[str, Handler],
    description: str,
    batch_handler: BatchHandler | None = None,
) -> tuple[faust.App, ServiceContext]:
    url = settings.database_url(service)
    if not url or not settings.kafka_bootstrap_servers:
        raise RuntimeError(
            f"{service.value} needs KAFKA_BOOTSTRAP_SERVERS and {service.value.upper()}_DATABASE_URL "
            "(`saga run` sets them for the local stack)"
        )
    engine = create_engine(url)
    producer = LazyProducer(settings.kafka_bootstrap_servers)
    relay = OutboxRelay(
        engine=engine,
        outbox=tables.outbox,
        publish=producer.publish,
        lock_id=zlib.crc32(f"outbox-relay:{service.value}".encode()),
    )
    commit_listeners: list[Callable[[], None]] = [relay.wake]

    def notify_commit() -> None:
        for listener in commit_listeners:
            listener()

    runner = EventRunner(
        consumer=service.value,
        engine=engine,
        tables=tables,
        handlers=handlers,
        batch_handler=batch_handler,
        emit_topic=service.value,
        on_commit=notify_commit,
    )
    app = faust.App(
        group_id(service),
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        store="memory://",
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A crashed worker's partitions wait for its session to expire before anyone else takes them:
        # 10 s instead of Faust's 60 s bounds that stall (Kafka's minimum is 6 s).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        topic_partitions=settings.topic_partitions,
        # No leader-election topic: nothing here runs `on_leader`, and an unreplicated internal topic
        # would be one more partition a lost broker leaves without a leader. (The replication of any topic
        # Faust declares follows the cluster: run_worker sets it from ensure_topics.)
        topic_disable_leader=True,
        producer_acks=-1,
        web_enabled=True,
        web_bind=settings.http_host,
        web_port=settings.http_port(service),
        web_host=settings.http_host,
        datadir=str(settings.state_dir / "faust" / service.value),
    )
    context = ServiceContext(
        service=service,
        settings=settings,
        engine=engine,
        tables=tables,
        relay=relay,
        runner=runner,
        producer=producer,
        commit_listeners=commit_listeners,
    )
    _attach_consumer(app, context, consumes)
    _attach_relay(app, context)
    retention = timedelta(hours=settings.inbox_retention_hours)

    async def forget_old_inbox_entries() -> None:
        await forget_processed_before(engine, tables.inbox, retention)

    periodic(app, 3600.0, forget_old_inbox_entries)
    _attach_common_views(app, context, description)
    app.web.web_app.middlewares.append(json_routing_errors)
    return app, context


def _attach_consumer(app: faust.App, context: ServiceContext, topics: Sequence[str]) -> None:
    source = app.topic(
        *topics, value_type=bytes, key_type=bytes, value_serializer="raw", key_serializer="raw"
    )

    # concurrency=1: with more, Faust can commit past an unfinished event (faust-streaming #606). One
    # agent still serves all its partitions at once: a batch holds what arrived from any of them, in
    # arrival order (which keeps each partition's, hence each order's, events in sequence).
    @app.agent(source, concurrency=1, name=f"{context.service.value}-consumer")
    async def consume(stream: Any) -> None:
        async def apply(events: Sequence[Any]) -> None:
            batch = [_raw_message(event.message) for event in events]
            await finish_or_exit(context.runner.process_batch(batch))

        await consume_in_batches(stream, apply, max_batch=context.settings.consumer_batch_max)


def _raw_message(message: Any) -> RawMessage:
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
    )


async def finish_or_exit(work: Awaitable[Any]) -> Any:
    """Run `work` to completion even if the worker is stopping.

    When Faust cancels an agent mid-event it still acknowledges that event and commits past it. So on
    cancellation we give the event time to finish; if it cannot (for example the database is down and
    the runner is retrying), we exit at once, before any commit, and Kafka redelivers it on restart.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(asyncio.shield(task), _FINISH_ON_STOP_SECONDS)
        except BaseException:
            log.error("stopping with an unfinished event; exiting without committing its offset")
            os._exit(EXIT_ABANDONED_EVENT)
        raise


def _attach_relay(app: faust.App, context: ServiceContext) -> None:
    @app.task
    async def relay_outbox() -> None:
        try:
            await context.relay.run_forever()
        finally:
            await context.producer.stop()


def periodic(app: faust.App, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
    """Run `work` every `seconds` on every worker; a failing round is logged and the next one runs.

    Timers select their rows with `FOR UPDATE SKIP LOCKED`, so several workers never do the same work.
    """

    async def tick() -> None:
        try:
            await work()
        except Exception:
            log.exception("periodic %s failed; will run again in %.1fs", work.__qualname__, seconds)

    tick.__name__ = tick.__qualname__ = f"periodic_{work.__qualname__.replace('.', '_')}"
    app.timer(seconds)(tick)


def on_wake(app: faust.App, seconds: float, work: Callable[[], Awaitable[Any]]) -> Callable[[], None]:
    """Run `work` each time the returned function is called, and every `seconds` at the latest."""
    wakeup = asyncio.Event()

    async def rounds() -> None:
        await run_rounds(wakeup, seconds, work)

    rounds.__name__ = rounds.__qualname__ = f"on_wake_{work.__qualname__.replace('.', '_')}"
    app.task(rounds)
    return wakeup.set


async def run_rounds(wakeup: asyncio.Event, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
    """Forever: wait for `wakeup` (at most `seconds`), then run `work` once.

    Wakes that come while a round runs add one more round, not one each. A failing round is logged and
    the next one runs, as with `periodic`.
    """
    name = getattr(work, "__qualname__", repr(work))
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=seconds)
        wakeup.clear()
        try:
            await work()
        except Exception:
            log.exception("%s failed; will run again in at most %.1fs", name, seconds)


def _attach_common_views(app: faust.App, context: ServiceContext, description: str) -> None:
    table = context.tables.dead_letters
    runner = context.runner
    documented = context.routes

    @serve(app, documented, shared_api.HEALTH)
    class Health(JsonView):
        async def get(self, request: Any) -> Any:
            return self.json({"status": "ok", "service": context.service.value})

    @serve(app, documented, shared_api.READY)
    class Ready(JsonView):
        async def get(self, request: Any) -> Any:
            checks = {
                "database": await _check(_ping_database(context)),
                "broker": await _check(_ping_broker(context)),
                "replication": await replication_readiness(context.settings),
            }
            ready = all(value == "ok" for value in checks.values())
            return self.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    @serve(app, documented, shared_api.METRICS)
    class Metrics(JsonView):
        async def get(self, request: Any) -> Any:
            body = await render_metrics(context)
            return self.bytes(body, content_type="text/plain; version=0.0.4")

    @serve(app, documented, shared_api.OPENAPI)
    class OpenApi(JsonView):
        async def get(self, request: Any) -> Any:
            return self.json(
                build_openapi(f"saga {context.service.value} service", description, context.routes)
            )

    @serve(app, documented, shared_api.DEAD_LETTERS)
    class DeadLetters(JsonView):
        async def get(self, request: Any, query: shared_api.DeadLetterQuery) -> Any:
            async with reading(context.engine) as conn:
                select_letters = select(table).order_by(table.c.id).limit(query.limit).offset(query.offset)
                if query.status is not shared_api.LetterStatusFilter.ALL:
                    select_letters = select_letters.where(table.c.status == query.status.value)
                if query.order_id is not None:
                    select_letters = select_letters.where(table.c.order_id == query.order_id)
                rows = (await conn.execute(select_letters)).all()
            return self.json(
                {
                    "items": [dead_letters.describe(row) for row in rows],
                    "limit": query.limit,
                    "offset": query.offset,
                }
            )

    @serve(app, documented, shared_api.DEAD_LETTER)
    class DeadLetter(JsonView):
        async def get(self, request: Any, dead_letter_id: int) -> Any:
            async with reading(context.engine) as conn:
                row = await dead_letters.load(conn, table, dead_letter_id)
            if row is None:
                raise not_found(f"dead letter {dead_letter_id}")
            return self.json(dead_letters.describe(row))

    @serve(app, documented, shared_api.RETRY_DEAD_LETTER)
    class RetryDeadLetter(JsonView):
        async def post(self, request: Any, dead_letter_id: int) -> Any:
            async with reading(context.engine) as conn:
                if await dead_letters.load(conn, table, dead_letter_id) is None:
                    raise not_found(f"dead letter {dead_letter_id}")
            try:
                results = await runner.retry_dead_letter(dead_letter_id)
            except DeadLetterNotRetryable as exc:
                raise ApiError(409, "not_retryable", str(exc)) from exc
            return self.json({"results": [{"id": i, "outcome": o.value} for i, o in results]})

    @serve(app, documented, shared_api.DISCARD_DEAD_LETTER)
    class DiscardDeadLetter(JsonView):
        async def post(self, request: Any, dead_letter_id: int) -> Any:
            async with context.engine.begin() as conn:
                row = await dead_letters.load(conn, table, dead_letter_id, lock=True)
                if row is None:
                    raise not_found(f"dead letter {dead_letter_id}")
                if row.status != dead_letters.PARKED:
                    raise ApiError(409, "not_parked", f"dead letter {dead_letter_id} is {row.status}")
                await conn.execute(
                    update(table)
                    .where(table.c.id == dead_letter_id)
                    .values(status=dead_letters.DISCARDED, resolved_at=func.now())
                )
            return self.json({"id": dead_letter_id, "status": dead_letters.DISCARDED})


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, 3.0)
    except Exception as exc:
        return f"failed: {exc!r}"
    return "ok"


async def _ping_database(context: ServiceContext) -> None:
    async with reading(context.engine) as conn:
        await conn.scalar(select(1))


async def _ping_broker(context: ServiceContext) -> None:
    producer = await context.producer.get()
    await producer.client.fetch_all_metadata()
