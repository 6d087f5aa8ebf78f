"""Kafka clients at the edge: declaring our topics, checking their replication, the relay's producer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    NodeNotReadyError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)

from common.broker_health import ProduceRefusals
from common.config import Settings
from common.kafka_security import KafkaConnection, KafkaTarget, as_connection, kafka_connection
from common.replication import (
    Replication,
    expected_from,
    refuse_impossible,
    replication_for,
    replication_shortfalls,
)
from common.services import SERVICES

if TYPE_CHECKING:  # a type only: the relay would bring SQLAlchemy into every `saga` command
    from common.messaging.relay import OutgoingMessage

log = logging.getLogger(__name__)
T = TypeVar("T")

# How old the clients' cluster metadata may get before they ask a node again (aiokafka's default: 5
# minutes). Short, because a node cut off from its peers keeps naming itself leader (#27).
METADATA_MAX_AGE_MS = 5000

# The saga topics, one per service (which topics each reads, and its group: common/services.py).
TOPICS: tuple[str, ...] = tuple(spec.topic for spec in SERVICES.values())


@dataclass
class ClusterTopics:
    """What the cluster says about its brokers and the replication of its topics."""

    brokers: int
    replicas: dict[str, list[int]] = field(default_factory=dict)  # topic → replicas of each partition
    leaderless: dict[str, list[int]] = field(default_factory=dict)  # topic → partitions without a leader


async def describe_cluster_topics(admin: AIOKafkaAdminClient) -> ClusterTopics:
    """The live brokers and every topic's replica assignment (metadata reads only; creates nothing)."""
    cluster = await _on_some_live_node(admin.describe_cluster)
    # All topics: naming some in a metadata request could make a broker auto-create them.
    described = await _on_some_live_node(admin.describe_topics)
    view = ClusterTopics(brokers=len(cluster["brokers"]))
    for topic in described:
        partitions = topic["partitions"]
        view.replicas[topic["topic"]] = [len(p["replicas"]) for p in partitions]
        view.leaderless[topic["topic"]] = [p["partition"] for p in partitions if p["leader"] < 0]
    return view


async def _on_some_live_node(read: Callable[[], Awaitable[T]], attempts: int = 10) -> T:
    """Run an admin read; if the node it went to is unreachable, run it again (on another random node).

    The admin client asks a random known broker, and a broker just lost stays known until the
    controller fences it (about 9 s); ten tries all landing on it are one in 59,000 on three brokers.
    """
    for _ in range(attempts - 1):
        with contextlib.suppress(NodeNotReadyError, KafkaConnectionError, RequestTimedOutError):
            return await read()
        await asyncio.sleep(0.05)
    return await read()


async def ensure_topics(settings: Settings, topics: Sequence[str] = TOPICS) -> Replication:
    """Create the saga topics if they are missing (idempotent; safe for every service to call at start).

    They get the replication that fits the cluster (`replication_for`), with `min.insync.replicas` set
    on the topic. Existing topics are left as they are, but one replicated less than it should be is
    logged as an error (and `/readyz` reports it: common/readiness.py). Returns the replication saga
    topics should have.
    Relying on broker auto-creation would give one partition and the broker's default replication.
    """
    connection = kafka_connection(settings)
    bootstrap = connection.bootstrap_servers
    admin = AIOKafkaAdminClient(**connection.aiokafka_options())
    await admin.start()
    try:
        cluster = await describe_cluster_topics(admin)
        replication = replication_for(cluster.brokers, settings.topic_replication_factor)
        missing = [name for name in topics if name not in cluster.replicas]
        if missing:
            refuse_impossible(replication, cluster.brokers, bootstrap)
            await _create(admin, missing, settings.topic_partitions, replication)
        existing = [name for name in topics if name not in missing]
        for problem in replication_shortfalls(existing, cluster.replicas, replication.factor):
            log.error(
                "%s (expected from %s): the topic does not survive the loss of a broker as it should",
                problem,
                expected_from(cluster.brokers, settings.topic_replication_factor),
            )
    finally:
        await admin.close()
    return replication


async def _create(
    admin: AIOKafkaAdminClient, names: Sequence[str], partitions: int, replication: Replication
) -> None:
    configs = {"min.insync.replicas": str(replication.min_insync)}
    new_topics = [NewTopic(name, partitions, replication.factor, topic_configs=configs) for name in names]
    # Another service may create a topic between our look and our create.
    with contextlib.suppress(TopicAlreadyExistsError):
        await admin.create_topics(new_topics)
    log.info("created topics %s with replication %s", list(names), replication)


async def read_cluster_topics(kafka: KafkaTarget) -> ClusterTopics:
    """`describe_cluster_topics` with an admin client of its own."""
    admin = AIOKafkaAdminClient(**as_connection(kafka).aiokafka_options(), request_timeout_ms=5000)
    await admin.start()
    try:
        return await describe_cluster_topics(admin)
    finally:
        await admin.close()


def problems_in(cluster: ClusterTopics, explicit: int | None, topics: Sequence[str] = TOPICS) -> list[str]:
    """Why `topics` lack the replication `cluster` should give them, each with where that comes from.

    Assigned replicas count, not in-sync ones: a broker lost for good leaves the factor as it was.
    """
    expected = replication_for(cluster.brokers, explicit).factor
    source = expected_from(cluster.brokers, explicit)
    return [f"{problem} ({source})" for problem in replication_shortfalls(topics, cluster.replicas, expected)]


async def replication_problems(settings: Settings, topics: Sequence[str] = TOPICS) -> list[str]:
    """Why the saga topics lack the replication the cluster should give them (empty when they have it)."""
    cluster = await read_cluster_topics(kafka_connection(settings))
    return problems_in(cluster, settings.topic_replication_factor, topics)


def replication_summary(
    cluster: ClusterTopics, explicit: int | None, topics: Sequence[str] = TOPICS
) -> dict[str, Any]:
    """The saga topics' replication as `saga stack status` shows it: per topic the factor (the fewest
    replicas of any partition) and the partitions without a leader, and the problems."""
    return {
        "brokers": cluster.brokers,
        "expected_replication_factor": replication_for(cluster.brokers, explicit).factor,
        "expected_from": expected_from(cluster.brokers, explicit),
        "topics": {
            name: {
                "replication_factor": min(cluster.replicas[name], default=0),
                "partitions": len(cluster.replicas[name]),
                "leaderless_partitions": cluster.leaderless.get(name, []),
            }
            for name in topics
            if name in cluster.replicas
        },
        "problems": problems_in(cluster, explicit, topics),
    }


def new_idempotent_producer(kafka: KafkaTarget) -> AIOKafkaProducer:
    """acks=all + idempotence: a retried send is written once, in order per partition."""
    return AIOKafkaProducer(
        **as_connection(kafka).aiokafka_options(),
        enable_idempotence=True,
        acks="all",
        # No waiting for more: the relay hands over every row it read in one go, so a linger only delays
        # each pass (2 ms of it cost ~1.5 ms of transit per hop at 10 sagas/s, bench/README.md).
        linger_ms=0,
        request_timeout_ms=15000,
        # A stale leader (a broker cut off from its peers) holds a write until the request times out and
        # is then asked again: only fresh metadata sends it to the new leader (common/app.py).
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )


async def publish_in_order(producer: AIOKafkaProducer, messages: Sequence[OutgoingMessage]) -> None:
    """Queue all sends in order, then wait for every acknowledgement (raises if any failed)."""
    futures = [
        await producer.send(
            message.topic,
            value=message.value,
            key=message.key.encode(),
            headers=list(message.headers) or None,
        )
        for message in messages
    ]
    await asyncio.gather(*futures)


class LazyProducer:
    """The relay's producer, started on first use inside the worker's event loop."""

    def __init__(self, connection: KafkaConnection) -> None:
        self._connection = connection
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        # What the broker last refused a publish with, for readiness (common/broker_health.py).
        self.refusals = ProduceRefusals()

    async def get(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                self.refusals.listen()
                producer = new_idempotent_producer(self._connection)
                await producer.start()
                self._producer = producer
            return self._producer

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        try:
            await publish_in_order(await self.get(), messages)
            self.refusals.accepted()
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
        self.refusals.stop_listening()
