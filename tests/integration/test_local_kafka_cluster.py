"""The three-node cluster: replicated topics survive the hard loss of one broker, and the saga topics are
created replicated on it without being told to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from common.config import Settings, load_settings
from common.kafka import TOPICS, describe_cluster_topics, ensure_topics, replication_problems
from common.replication import Replication, ReplicationError
from saga_tools.local_stack.local_kafka import KafkaCluster, ensure_kafka_jars
from saga_tools.local_stack.ports import is_listening

MESSAGES = 200
# A node killed hard is fenced once its broker session expires without a heartbeat: 9 s by default, which
# each test waited out once. 4 s (heartbeats every second) still rides out a busy machine's pauses.
FAST_FENCING = {"broker.session.timeout.ms": 4000, "broker.heartbeat.interval.ms": 1000}


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One cluster for the module: starting three nodes takes about 18 s on two cores, bringing back the
    one node a test killed about half that (`cluster` does before each test)."""
    settings = load_settings()
    running = KafkaCluster(
        ensure_kafka_jars(settings.cache_dir, settings.kafka_version),
        tmp_path_factory.mktemp("cluster"),
        nodes=3,
        node_properties=FAST_FENCING,
    )
    running.start()
    try:
        yield running
    finally:
        # Killed rather than stopped: two nodes whose peer is gone took 6 s over a controlled shutdown,
        # and nobody reads this cluster's data again.
        for index in range(running.nodes):
            running.kill(index)


@pytest.fixture()
def cluster(three_nodes: KafkaCluster) -> KafkaCluster:
    """The module's cluster with every node up: a node an earlier test killed is started again (its
    broker port opens once it is registered and unfenced)."""
    for index, ports in enumerate(three_nodes.ports):
        if not is_listening(ports.broker):
            three_nodes.restart(index)
    return three_nodes


async def _produce(bootstrap: str, topic: str, values: range) -> None:
    """Every value written and acknowledged by all in-sync replicas (sent together: one at a time took
    about 5 s for 200 on three nodes; idempotence keeps each key's order)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, str(value).encode(), key=f"order-{value % 7}".encode())
            for value in values
        ]
        await asyncio.gather(*sent)
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


async def _topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    configs = {resource[3]: {entry[0]: entry[1] for entry in resource[4]} for resource in response.resources}
    for topic in described:
        configs[topic["topic"]]["replicas"] = ",".join(str(len(p["replicas"])) for p in topic["partitions"])
    return configs


async def _settled_topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """The topics' configs once the broker asked knows them all: a topic just created may be described
    by a broker whose metadata has not caught up yet (its configs then lack the topic's own settings)."""
    async with asyncio.timeout(15):
        while True:
            configs = await _topic_configs(bootstrap, topics)
            if all("min.insync.replicas" in configs.get(topic, {}) for topic in topics):
                return configs
            await asyncio.sleep(0.2)


async def _wait_for_brokers(bootstrap: str, count: int) -> None:
    """Until the controller has fenced the lost broker (the cluster then lists `count` brokers)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(60):
            while True:
                if (await describe_cluster_topics(admin)).brokers == count:
                    return
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def test_saga_topics_follow_the_cluster_and_a_short_one_is_reported(
    cluster: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGA_TOPIC_REPLICATION_FACTOR", raising=False)
    settings = Settings.model_validate({"KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers})

    assert await ensure_topics(settings) == Replication(factor=3, min_insync=2)
    configs = await _settled_topic_configs(cluster.bootstrap_servers, list(TOPICS))
    for topic in TOPICS:
        assert configs[topic]["replicas"] == "3,3,3"
        assert configs[topic]["min.insync.replicas"] == "2"
    assert await replication_problems(settings) == []

    # A topic created before (one copy) is named, with where the expectation comes from.
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("legacy", num_partitions=1, replication_factor=1)])
        async with asyncio.timeout(30):  # until every broker's metadata has it
            while True:
                if all(["legacy" in await admin.list_topics() for _ in range(6)]):
                    break
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    # A broker that has not heard of the new topic yet reports it missing (seen in CI): ask again.
    async with asyncio.timeout(30):
        while True:
            problems = await replication_problems(settings, [*TOPICS, "legacy"])
            if not any("missing" in problem for problem in problems):
                break
            await asyncio.sleep(0.2)
    assert problems == [
        "topic legacy has 1 replica(s), below 3 (3 live broker(s), SAGA_TOPIC_REPLICATION_FACTOR unset)"
    ]

    # Losing a broker leaves the saga topics as replicated as they were: nothing to report.
    cluster.kill(2)
    survivors = Settings.model_validate(
        {"KAFKA_BOOTSTRAP_SERVERS": ",".join(f"127.0.0.1:{p.broker}" for p in cluster.ports[:2])}
    )
    await _wait_for_brokers(survivors.kafka_bootstrap_servers or "", 2)
    assert await replication_problems(survivors) == []

    # More copies than live brokers cannot be created: refused with the reason.
    monkeypatch.setenv("SAGA_TOPIC_REPLICATION_FACTOR", "3")
    explicit = Settings.model_validate({"KAFKA_BOOTSTRAP_SERVERS": survivors.kafka_bootstrap_servers})
    with pytest.raises(ReplicationError, match="2 live broker"):
        await ensure_topics(explicit, ["new-topic"])
    assert await ensure_topics(explicit) == Replication(factor=3, min_insync=2)  # nothing to create: fine
