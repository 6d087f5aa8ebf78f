"""The three-node cluster: replicated topics survive the hard loss of one broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from common.config import load_settings
from common.infra.kafka import KafkaCluster, ensure_kafka_jars

MESSAGES = 200


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    settings = load_settings()
    with KafkaCluster(
        ensure_kafka_jars(settings.cache_dir, settings.kafka_version), tmp_path, nodes=3
    ) as running:
        yield running


async def _produce(bootstrap: str, topic: str, values: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, str(value).encode(), key=f"order-{value % 7}".encode())
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[int] = []
    try:
        async with asyncio.timeout(60):
            while len(values) < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                values.extend(int(r.value) for records in batch.values() for r in records)
    finally:
        await consumer.stop()
    return sorted(values)


async def test_a_replicated_topic_survives_one_broker_killed_hard(cluster: KafkaCluster) -> None:
    bootstrap = cluster.bootstrap_servers
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("replicated", num_partitions=3, replication_factor=3)])
        described = await admin.describe_topics(["replicated"])
    finally:
        await admin.close()
    assert all(len(p["replicas"]) == 3 for p in described[0]["partitions"])
    await _produce(bootstrap, "replicated", range(MESSAGES))

    cluster.kill(0)
    survivors = ",".join(f"127.0.0.1:{p.broker}" for p in cluster.ports[1:])

    assert await _read_all(survivors, "replicated", MESSAGES) == list(range(MESSAGES))
    # acks=all still succeeds with two of three in sync (min.insync.replicas=2).
    await _produce(survivors, "replicated", range(MESSAGES, MESSAGES + 20))
    assert await _read_all(survivors, "replicated", MESSAGES + 20) == list(range(MESSAGES + 20))
