"""Kafka clients at the edge: declaring our topics and the relay's idempotent producer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from common.config import Service, Settings

log = logging.getLogger(__name__)

TOPICS: tuple[str, ...] = tuple(service.value for service in Service)

# The topics each service's consumer group reads (each service writes only the topic of its own name).
CONSUMED_TOPICS: dict[Service, tuple[str, ...]] = {
    Service.PAYMENT: (Service.ORDER.value,),
    Service.ORDER: (Service.PAYMENT.value, Service.DELIVERY.value),
    Service.DELIVERY: (Service.ORDER.value,),
}


def group_id(service: Service) -> str:
    """The consumer group (and Faust app id) of a service's workers."""
    return f"saga-{service.value}"


async def ensure_topics(settings: Settings, topics: Sequence[str] = TOPICS) -> None:
    """Create the saga topics if they are missing (idempotent; safe for every service to call at start).

    Relying on broker auto-creation would give one partition and the broker's default replication.
    """
    assert settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is not set"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, settings.topic_partitions, settings.topic_replication_factor)
            for name in topics
            if name not in existing
        ]
        if missing:
            # Another service may create a topic between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()


def new_idempotent_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    """acks=all + idempotence: a retried send is written once, in order per partition."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        request_timeout_ms=15000,
    )


async def publish_in_order(producer: AIOKafkaProducer, messages: Sequence[tuple[str, str, bytes]]) -> None:
    """Queue all sends in order, then wait for every acknowledgement (raises if any failed)."""
    futures = [await producer.send(topic, value=value, key=key.encode()) for topic, key, value in messages]
    await asyncio.gather(*futures)
