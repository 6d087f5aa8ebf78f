"""The composition root: a service's Faust worker wired to the runner, the relay and the shared endpoints.

A service brings its tables, its handlers, its own HTTP views and timers; the topics it reads and writes,
its group and its port are in its declaration (common/services.py). `create_service` builds what all three
share — the engine, the relay and its producer, the runner, the consuming agent, the relay task, the
operations and dead-letter endpoints — and hands back the Faust app with a `ServiceContext`, which it
provides to the app's views (`JsonView.dependency`). Nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import faust
from faust.types.auth import CredentialsT
from prometheus_client.core import Metric
from sqlalchemy import text

from common import operations_api
from common.api_keys import ApiKeys
from common.config import Service, Settings, database_env_var
from common.context import ServiceContext
from common.database_clock import DATABASE_CLOCK, READ_EVERY_SECONDS
from common.db import create_engine, reading
from common.gc_pauses import process_pauses
from common.http_server import HttpLimits, ServiceApp
from common.http_tracing import traced_requests
from common.kafka import METADATA_MAX_AGE_MS, LazyProducer
from common.kafka_security import KafkaConnection, kafka_connection
from common.messaging import dead_letter_api
from common.messaging.batches import consume_in_batches
from common.messaging.consumer_lag import AppliedOffsets, Partition, lag_source
from common.messaging.dead_letters import RawMessage
from common.messaging.inbox import forget_processed_before
from common.messaging.relay import OutboxRelay
from common.messaging.runner import BatchHandler, ClaimLocks, EventRunner, Handler
from common.messaging.tables import MessagingTables
from common.readiness import service_readiness
from common.scheduling import periodic
from common.services import SERVICES
from common.tracing import TRACEPARENT, Tracing, header_value
from common.web import json_routing_errors, provide, serve
from common.write_health import DatabaseWrites

log = logging.getLogger(__name__)

# How long a stopping worker waits for the event in hand before it exits without committing it.
_FINISH_ON_STOP_SECONDS = 15.0
# Exit code used when the worker had to abandon an event: a supervisor restarts it, Kafka redelivers.
EXIT_ABANDONED_EVENT = 75


def create_service(
    service: Service,
    settings: Settings,
    *,
    tables: MessagingTables,
    handlers: Mapping[str, Handler],
    description: str,
    batch_handler: BatchHandler | None = None,
    claim_locks: ClaimLocks | None = None,
) -> tuple[faust.App, ServiceContext]:
    """The service's Faust app and context: it consumes the topics its declaration names
    (common/services.py) with `handlers` and writes its own through `tables`' outbox."""
    spec = SERVICES[service]
    url = _database_url(service, settings)
    api_keys = _api_keys(service, settings)
    engine = create_engine(url)
    connection = kafka_connection(settings)
    producer = LazyProducer(connection)
    tracing = Tracing.from_environment(spec.name)
    relay = OutboxRelay(
        tracing=tracing,
        engine=engine,
        outbox=tables.outbox,
        publish=producer.publish,
        lock_id=zlib.crc32(f"outbox-relay:{spec.name}".encode()),
    )
    commit_listeners: list[Callable[[], None]] = []
    writes = DatabaseWrites()

    def notify_commit() -> None:
        for listener in commit_listeners:
            listener()

    runner = EventRunner(
        consumer=spec.name,
        engine=engine,
        tables=tables,
        handlers=handlers,
        batch_handler=batch_handler,
        claim_locks=claim_locks,
        emit_topic=spec.topic,
        on_emitted=relay.wake,
        on_commit=notify_commit,
        tracing=tracing,
        writes=writes,
    )
    app = _faust_app(service, settings, connection)
    context = ServiceContext(
        service=service,
        settings=settings,
        engine=engine,
        tables=tables,
        relay=relay,
        runner=runner,
        producer=producer,
        description=description,
        commit_listeners=commit_listeners,
        tracing=tracing,
        writes=writes,
    )
    _attach_consumer(app, context, spec.consumed_topics)
    _attach_relay(app, context)
    _attach_inbox_cleanup(app, context)
    _attach_database_clock(app, context)
    _attach_collector_pauses(context)
    readiness, close_readiness = service_readiness(context, api_keys)
    app.task(close_readiness)
    provide(app, context, api_keys, readiness, writes)
    serve(app, context.routes, operations_api.blueprint)
    serve(app, context.routes, dead_letter_api.blueprint)
    app.web.web_app.middlewares.append(json_routing_errors)
    if tracing.enabled:
        app.web.web_app.middlewares.insert(0, traced_requests(tracing))
    return app, context


def _database_url(service: Service, settings: Settings) -> str:
    """The service's database URL; a service without it, or without a broker, cannot start."""
    url = settings.database_url(service)
    if not url or not settings.kafka_bootstrap_servers:
        raise RuntimeError(
            f"{service.value} needs KAFKA_BOOTSTRAP_SERVERS and {database_env_var(service)} "
            "(`saga run` sets them for the local stack)"
        )
    return url


def _api_keys(service: Service, settings: Settings) -> ApiKeys:
    """The keys the service accepts (NoApiKeys when none and authentication is on); with authentication
    off, said loudly at start."""
    api_keys = ApiKeys.from_settings(settings)
    if api_keys.disabled:
        log.warning(
            "AUTHENTICATION IS OFF (SAGA_DISABLE_AUTHENTICATION): anyone who reaches %s:%d can call every"
            " endpoint of %s. For development only.",
            settings.http_host,
            settings.http_port(service),
            service.value,
        )
    return api_keys


def _faust_app(service: Service, settings: Settings, connection: KafkaConnection) -> faust.App:
    """The Faust app of a service: its group, the broker (with the service's credentials), the web server
    (only the service's routes, slow clients bounded: common/http_server.py), and the settings that keep
    Faust from its own traps (see the consumer and docs/operators/reliability.md)."""
    return ServiceApp(
        SERVICES[service].group_id,
        http_limits=HttpLimits.from_settings(settings),
        broker=[f"kafka://{server}" for server in connection.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(connection),
        store="memory://",
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A crashed worker's partitions wait for its session to expire before anyone else takes them:
        # 10 s instead of Faust's 60 s bounds that stall (Kafka's minimum is 6 s).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        # A request the broker has not answered in 15 s is given up, its connection closed and a new one
        # made (as the relay's producer does, common/kafka.py). A partition stalls connections without an
        # error, and after the repair TCP resends only at its next backed-off retry (25.6 s, then 51 s
        # after the cut began), so with Faust's 90 s default a 30 s cut held the consumer's fetches,
        # heartbeats and offset commits until 90 s after it began (#27, docs/operators/reliability.md).
        # Not below the session timeout (Faust refuses that). A JoinGroup the coordinator holds longer
        # (a member slow to rejoin) is sent again, not lost.
        broker_request_timeout=15.0,
        # Metadata asked again every 5 s, not every 5 minutes: a broker cut off from its peers still
        # answers as the leader of partitions the others have since taken over, and never with an error
        # that makes aiokafka ask again (its fetches come back empty; writes and heartbeats wait for the
        # repair). Asked of a random node, the answer is the majority's two times in three (#27,
        # docs/operators/reliability.md). A metadata request is a few hundred bytes.
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        producer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
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


def faust_credentials(connection: KafkaConnection) -> CredentialsT | None:
    """The connection as Faust's broker credentials, so its consumer and producer authenticate exactly as
    our own clients do (Faust hands these to aiokafka as security_protocol, sasl_* and ssl_context)."""
    if connection.uses_sasl:
        assert connection.password is not None
        return faust.SASLCredentials(
            username=connection.username,
            password=connection.password.get_secret_value(),
            ssl_context=connection.ssl_context(),  # None: SASL_PLAINTEXT
            mechanism=connection.sasl_mechanism,
        )
    context = connection.ssl_context()
    return faust.SSLCredentials(context) if context is not None else None


def _attach_inbox_cleanup(app: faust.App, context: ServiceContext) -> None:
    """Forget processed event ids older than the retention, hourly (they must outlive the topics')."""
    retention = timedelta(hours=context.settings.inbox_retention_hours)

    async def forget_old_inbox_entries() -> None:
        await forget_processed_before(context.engine, context.tables.inbox, retention)

    periodic(app, 3600.0, forget_old_inbox_entries)


def _attach_database_clock(app: faust.App, context: ServiceContext) -> None:
    """Keep the process's DATABASE_CLOCK on the database's time: read at start, then every
    READ_EVERY_SECONDS (common/database_clock.py). While the database is away the last reading holds."""

    async def follow_the_database_clock() -> None:
        while True:
            try:
                async with reading(context.engine) as conn:
                    before = time.monotonic()
                    epoch = await conn.scalar(text("SELECT extract(epoch FROM clock_timestamp())::float8"))
                    after = time.monotonic()
                DATABASE_CLOCK.read(float(epoch), at=(before + after) / 2)
            except Exception as error:
                log.debug("cannot read the database's clock (%r); the last reading holds", error)
            await asyncio.sleep(READ_EVERY_SECONDS)

    app.task(follow_the_database_clock)


def _attach_collector_pauses(context: ServiceContext) -> None:
    """The garbage collector's pauses on /metrics (common/gc_pauses.py)."""
    pauses = process_pauses()

    async def collector_pauses() -> list[Metric]:
        return pauses.metrics(context.service.value)

    context.metric_sources.append(collector_pauses)


def _attach_consumer(app: faust.App, context: ServiceContext, topics: Sequence[str]) -> None:
    source = app.topic(
        *topics, value_type=bytes, key_type=bytes, value_serializer="raw", key_serializer="raw"
    )
    applied = AppliedOffsets()

    def forget_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        applied.forget(Partition(tp.topic, tp.partition) for tp in revoked)

    app.on_partitions_revoked.connect(forget_revoked)
    context.metric_sources.append(lag_source(context.service.value, lambda: app.consumer, applied))

    # concurrency=1: with more, Faust can commit past an unfinished event (faust-streaming #606). One
    # agent still serves all its partitions at once: a batch holds what arrived from any of them, in
    # arrival order (which keeps each partition's, hence each order's, events in sequence).
    @app.agent(source, concurrency=1, name=f"{context.service.value}-consumer")
    async def consume(stream: Any) -> None:
        async def apply(events: Sequence[Any]) -> None:
            batch = [_raw_message(event.message) for event in events]
            await finish_or_exit(context.runner.process_batch(batch))
            applied.record(batch)

        await consume_in_batches(stream, apply, max_batch=context.settings.consumer_batch_max)


def _raw_message(message: Any) -> RawMessage:
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        traceparent=header_value(message.headers, TRACEPARENT),
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
