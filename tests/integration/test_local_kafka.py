"""The project's own Kafka: a real broker from Maven Central jars, in KRaft mode."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from common.config import load_settings
from saga_tools.local_stack.local_kafka import KafkaCluster, KafkaSetupError, ensure_kafka_jars
from saga_tools.local_stack.ports import is_listening


async def test_a_keyed_message_is_produced_and_consumed_on_the_local_broker(kafka_bootstrap: str) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"hello", key=b"order-42")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        received = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert (received.key, received.value) == (b"order-42", b"hello")
    assert received.partition == sent.partition


def test_a_single_node_stops_cleanly_and_frees_its_port(tmp_path: Path) -> None:
    settings = load_settings()
    cluster = KafkaCluster(ensure_kafka_jars(settings.cache_dir, settings.kafka_version), tmp_path, nodes=1)
    cluster.start()
    port, pids = cluster.ports[0].broker, cluster.pids
    assert is_listening(port)

    cluster.stop()

    assert not is_listening(port)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert (
        "shut down completed" in cluster.log_path(0).read_text()
        or "shutting down" in cluster.log_path(0).read_text().lower()
    )


def test_cached_jars_are_used_without_maven(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    jars = ensure_kafka_jars(settings.cache_dir, settings.kafka_version)
    monkeypatch.setenv("PATH", "/nonexistent")

    assert ensure_kafka_jars(settings.cache_dir, settings.kafka_version) == jars
    assert any(jar.name.startswith("kafka_2.13-") for jar in jars.iterdir())


def test_a_missing_maven_is_reported_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(KafkaSetupError, match="Install Maven"):
        ensure_kafka_jars(tmp_path, "4.1.1")


def test_a_broker_that_cannot_start_reports_the_tail_of_its_log(tmp_path: Path) -> None:
    settings = load_settings()
    jars = ensure_kafka_jars(settings.cache_dir, settings.kafka_version)
    with KafkaCluster(jars, tmp_path, nodes=1):
        pass  # formatted and started once
    cluster = KafkaCluster(jars, tmp_path, nodes=1, heap_mb=1)  # the JVM refuses a 1 MiB heap
    with pytest.raises(KafkaSetupError, match="did not accept connections") as error:
        cluster.start()
    assert "heap" in str(error.value).lower()
