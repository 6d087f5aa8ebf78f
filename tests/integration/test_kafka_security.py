"""A secured local broker (TLS, SCRAM-SHA-512 principals, StandardAuthorizer ACLs) refuses what it should.

Started by the project's own code, as `saga run --kafka-security` starts it: delivery's credentials cannot
publish to `payment` (the topic order believes payment's events from), a client without credentials, or
with a wrong password, cannot connect, a service cannot join or reset another's group, and the operator
may read, describe and reset groups (with our replay and with Kafka's own consumer-group tool) but not write.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from common.config import Service, Settings, load_settings
from common.kafka import LazyProducer, ensure_topics
from common.kafka_security import KafkaConnection, kafka_connection
from common.messaging.relay import OutgoingMessage
from common.services import SERVICES
from saga_tools.local_stack.kafka_access import provision_saga_access
from saga_tools.local_stack.local_kafka import KafkaCluster, ensure_kafka_jars, kafka_tool_command
from saga_tools.local_stack.local_kafka_security import PRINCIPALS, LocalKafkaSecurity
from saga_tools.ops.groups import commit_moves, group_members, partition_states, topic_partitions
from saga_tools.ops.offsets import ToBeginning, plan_replay

ORDER_GROUP, PAYMENT_GROUP = SERVICES[Service.ORDER].group_id, SERVICES[Service.PAYMENT].group_id


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    settings = load_settings()
    if settings.kafka_bootstrap_servers:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS is set: this test starts its own secured broker")
    jars = ensure_kafka_jars(settings.cache_dir, settings.kafka_version)
    cluster = KafkaCluster(jars, tmp_path_factory.mktemp("secured-kafka"), secure=True)
    began = time.monotonic()
    cluster.start()
    try:
        started = time.monotonic()
        provision_saga_access(cluster, settings)
        print(f"secured broker {started - began:.1f} s, topics and ACLs {time.monotonic() - started:.1f} s")
        yield cluster
    finally:
        cluster.stop()


def _security(cluster: KafkaCluster) -> LocalKafkaSecurity:
    assert cluster.security is not None
    return cluster.security


def _as(cluster: KafkaCluster, principal: str) -> KafkaConnection:
    """The connection a process given the stack's environment for `principal` builds (the real path)."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        **_security(cluster).client_environment(principal),
    }
    return kafka_connection(Settings.model_validate(env))


async def test_delivery_publishes_to_its_own_topic_but_not_to_payment(secured: KafkaCluster) -> None:
    relay = LazyProducer(_as(secured, "delivery"))  # the relay's own producer
    try:
        await relay.publish([OutgoingMessage("delivery", "order-1", b"{}")])
        with pytest.raises(TopicAuthorizationFailedError):
            await relay.publish([OutgoingMessage("payment", "order-1", b'{"type": "PaymentCompleted"}')])
    finally:
        await relay.stop()


async def test_nothing_forged_reached_payment(secured: KafkaCluster) -> None:
    operator = _as(secured, "operator")
    partitions = await topic_partitions(operator, ["payment"])
    consumer = AIOKafkaConsumer(**operator.aiokafka_options(), group_id=None)
    await consumer.start()
    try:
        assert sum((await consumer.end_offsets(partitions)).values()) == 0
    finally:
        await consumer.stop()


async def test_a_client_without_credentials_cannot_connect(secured: KafkaCluster) -> None:
    for options in (
        {},  # plaintext to the TLS port: the handshake fails
        {"security_protocol": "SSL", "ssl_context": _as(secured, "delivery").ssl_context()},  # TLS, no SASL
    ):
        producer = AIOKafkaProducer(
            bootstrap_servers=secured.bootstrap_servers, request_timeout_ms=5000, **options
        )
        with pytest.raises((KafkaConnectionError, KafkaError)):
            async with asyncio.timeout(30):
                await producer.start()
        await producer.stop()


async def test_a_wrong_password_cannot_connect(secured: KafkaCluster) -> None:
    real = _as(secured, "delivery")
    forged = KafkaConnection(
        real.bootstrap_servers, "SASL_SSL", "SCRAM-SHA-512", "delivery", SecretStr("guessed"), real.cafile
    )
    producer = AIOKafkaProducer(**forged.aiokafka_options(), request_timeout_ms=5000)
    with pytest.raises((SaslAuthenticationFailed, KafkaConnectionError)):
        async with asyncio.timeout(30):
            await producer.start()
    await producer.stop()


async def test_a_service_may_not_join_another_services_group(secured: KafkaCluster) -> None:
    consumer = AIOKafkaConsumer(
        "order", **_as(secured, "delivery").aiokafka_options(), group_id=PAYMENT_GROUP
    )
    with pytest.raises(GroupAuthorizationFailedError):
        async with asyncio.timeout(30):
            await consumer.start()
            await consumer.getmany(timeout_ms=5000)
    await consumer.stop()


async def test_services_describe_topics_at_start_and_the_operator_reads_groups(
    secured: KafkaCluster,
) -> None:
    for service in Service:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": secured.bootstrap_servers,
            **_security(secured).client_environment(service.value),
        }
        await ensure_topics(Settings.model_validate(env))  # describes only: the topics exist
    operator = _as(secured, "operator")
    # The first group request of a fresh broker creates __consumer_offsets; until then: not available.
    async with asyncio.timeout(30):
        while True:
            try:
                assert await group_members(operator, ORDER_GROUP) == 0
                break
            except GroupCoordinatorNotAvailableError:
                await asyncio.sleep(0.2)
    await partition_states(operator, ORDER_GROUP, ["payment", "delivery"])
    producer = AIOKafkaProducer(**operator.aiokafka_options())
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait("order", b"{}", key=b"order-1")
    finally:
        await producer.stop()


def test_no_password_in_the_broker_log_or_world_readable(secured: KafkaCluster) -> None:
    security = _security(secured)
    log = secured.log_path(0).read_text(errors="replace")
    for principal in PRINCIPALS:
        assert security.password(principal).get_secret_value() not in log
        assert security.password_file(principal).stat().st_mode & 0o077 == 0
    properties = Path(secured.state_dir) / "node-1" / "server.properties"
    assert properties.stat().st_mode & 0o077 == 0


async def test_the_admin_principal_is_not_given_to_anyone_else(secured: KafkaCluster) -> None:
    # A sanity check of the fixture: describing all topics as admin works (super user), so the refusals
    # above come from the ACLs, not from a broken listener.
    admin = AIOKafkaAdminClient(**_as(secured, "admin").aiokafka_options())
    await admin.start()
    try:
        assert {"payment", "order", "delivery"} <= set(await admin.list_topics())
    finally:
        await admin.close()


GROUP_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def _group_tool(cluster: KafkaCluster, principal: str, *args: str) -> str:
    """Kafka's consumer-group tool as `principal` (its `--command-config` from the same connection)."""
    connection = _as(cluster, principal)
    with connection.java_config_file() as config:
        command = kafka_tool_command(
            cluster.jars,
            GROUP_TOOL,
            "--bootstrap-server",
            cluster.bootstrap_servers,
            "--command-config",
            str(config),
            *args,
        )
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


async def test_the_operator_resets_a_group_and_a_service_cannot_reset_anothers(secured: KafkaCluster) -> None:
    moves = plan_replay(
        await partition_states(_as(secured, "operator"), ORDER_GROUP, ["payment"]), ToBeginning()
    )
    await commit_moves(_as(secured, "operator"), ORDER_GROUP, moves)  # what `saga replay` does
    with pytest.raises(GroupAuthorizationFailedError):
        await commit_moves(_as(secured, "delivery"), ORDER_GROUP, moves)

    reset = [
        "--reset-offsets",
        "--group",
        ORDER_GROUP,
        "--topic",
        "payment",
        "--to-earliest",
        "--execute",
    ]
    allowed = _group_tool(secured, "operator", *reset)
    assert allowed.startswith("exit 0") and "Authorization" not in allowed, allowed
    described = _group_tool(secured, "operator", "--describe", "--group", ORDER_GROUP)
    assert described.startswith("exit 0") and "payment" in described, described
    refused = _group_tool(secured, "delivery", *reset)
    assert "GroupAuthorizationException" in refused, refused
