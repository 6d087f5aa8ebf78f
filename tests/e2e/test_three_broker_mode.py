"""The three-broker mode exactly as the README starts it: `saga run --kafka-nodes 3`, nothing else set.

The command runs as a new user runs it: from its own folder (the state lands in `./.state`), with a shell
environment that configures nothing of the platform. Under a shop-like load one broker is killed for good;
then Kafka's own TopicCommand must show every topic replicated with a leader on every partition, and the
invariant checker must find every accepted checkout finished. The stall the loss caused is measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from common.auth import Scope
from common.config import Service, Settings, load_settings
from common.kafka import TOPICS, ensure_topics
from common.tenancy import order_id_of
from saga_tools.local_stack.local_kafka import ensure_kafka_jars, kafka_tool_command
from saga_tools.local_stack.ports import free_port
from saga_tools.local_stack.stack import LocalStack
from saga_tools.supervisor import ServiceProcess
from tests.chaos.harness import EXPECTED, ShopLoad
from tests.e2e.readme_platform import ReadmePlatform, saga_command, saga_run
from tests.invariants import wait_until_quiet

TOPIC_TOOL = "org.apache.kafka.tools.TopicCommand"
QUORUM_TOOL = "org.apache.kafka.tools.MetadataQuorumCommand"
SAGAS = 150  # at the load's 6 checkouts/s: 25 s of traffic, before, during and after the loss
FAILOVER_TIMEOUT = 60.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


# ─── Kafka's own view ────────────────────────────────────────────────────────────────────────────────


@dataclass
class TopicView:
    """One topic as Kafka's TopicCommand describes it."""

    replication_factor: int
    configs: str
    leaders: dict[int, str] = field(default_factory=dict)  # partition → leader ("none" when it has none)


_TOPIC_LINE = re.compile(r"^Topic: (\S+)\s+TopicId: \S+\s+PartitionCount: \d+\s+ReplicationFactor: (\d+)")
_PARTITION_LINE = re.compile(r"^\s+Topic: (\S+)\s+Partition: (\d+)\s+Leader: (\S+)")


def kafka_describe(bootstrap: str) -> tuple[dict[str, TopicView], str]:
    """Every topic of the cluster as `kafka-topics.sh --describe` prints it (and the raw output)."""
    settings = load_settings()
    jars = ensure_kafka_jars(settings.cache_dir, settings.kafka_version)
    command = kafka_tool_command(jars, TOPIC_TOOL, "--bootstrap-server", bootstrap, "--describe")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    topics: dict[str, TopicView] = {}
    for line in result.stdout.splitlines():
        if match := _TOPIC_LINE.match(line):
            configs = line.split("Configs:", 1)[1].strip() if "Configs:" in line else ""
            topics[match[1]] = TopicView(int(match[2]), configs)
        elif match := _PARTITION_LINE.match(line):
            topics[match[1]].leaders[int(match[2])] = match[3]
    return topics, result.stdout


def quorum_leader(bootstrap: str) -> int:
    """The node id of the active KRaft controller, as Kafka's metadata-quorum tool reports it."""
    settings = load_settings()
    jars = ensure_kafka_jars(settings.cache_dir, settings.kafka_version)
    command = kafka_tool_command(jars, QUORUM_TOOL, "--bootstrap-server", bootstrap, "describe", "--status")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r"^LeaderId:\s+(\d+)", result.stdout, re.MULTILINE)
    assert match, result.stdout + result.stderr
    return int(match[1])


async def _leaders(bootstrap: str) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(TOPICS))
    finally:
        await admin.close()
    return {(t["topic"], p["partition"]): p["leader"] for t in described for p in t["partitions"]}


def wait_for_new_leaders(bootstrap: str, lost: int, timeout: float) -> float | None:
    """Seconds until no saga partition is led by the lost broker or by nobody (None: not within timeout)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            leaders = asyncio.run(_leaders(bootstrap))
        except Exception:  # the admin client itself may first try the dead address; ask again
            leaders = {}
        if leaders and all(leader not in (lost, -1) for leader in leaders.values()):
            return time.monotonic() - began
        time.sleep(0.1)
    return None


# ─── the measured stall ──────────────────────────────────────────────────────────────────────────────


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def longest_publish_wait(database_urls: dict[str, str], since: datetime) -> float:
    """The longest an event written since `since` waited in an outbox before the broker acknowledged it."""
    longest = 0.0
    for url in database_urls.values():
        with psycopg.connect(_plain(url)) as conn:
            row = conn.execute(
                "SELECT max(extract(epoch FROM published_at - created_at)) FROM outbox "
                "WHERE created_at >= %s",
                (since,),
            ).fetchone()
        if row and row[0] is not None:
            longest = max(longest, float(row[0]))
    return longest


def partition_for(key: str, partitions: list[int]) -> int:
    """The partition the producer sends a keyed event to: Kafka's murmur2 of the key over all partitions."""
    ordered = sorted(partitions)
    return int(DefaultPartitioner()(key.encode(), ordered, ordered))


def publish_waits_while_leaderless(
    database_urls: dict[str, str],
    leaders: dict[tuple[str, int], int],
    lost: int,
    since: datetime,
    until: datetime,
) -> dict[str, float]:
    """The longest an event written between `since` and `until` (the lost broker's partitions leaderless)
    waited in an outbox: on a partition the lost broker led, and on one it did not (0 when none)."""
    partitions: dict[str, list[int]] = {}
    for topic, partition in leaders:
        partitions.setdefault(topic, []).append(partition)
    longest = {"lost_leader": 0.0, "kept_leader": 0.0}
    for url in database_urls.values():
        with psycopg.connect(_plain(url)) as conn:
            rows = conn.execute(
                "SELECT topic, key, extract(epoch FROM published_at - created_at) FROM outbox"
                " WHERE created_at >= %s AND created_at < %s AND published_at IS NOT NULL",
                (since, until),
            ).fetchall()
        for topic, key, waited in rows:
            led_by = leaders[(topic, partition_for(key, partitions[topic]))]
            side = "lost_leader" if led_by == lost else "kept_leader"
            longest[side] = max(longest[side], float(waited))
    return longest


def saga_durations(database_urls: dict[str, str]) -> list[float]:
    """Seconds from each accepted checkout to its order's last change (its terminal state, once quiet)."""
    with psycopg.connect(_plain(database_urls["payment"])) as conn:
        started = dict(conn.execute("SELECT order_id, created_at FROM payments").fetchall())
    with psycopg.connect(_plain(database_urls["order"])) as conn:
        ended = dict(conn.execute("SELECT order_id, updated_at FROM orders").fetchall())
    return [(ended[o] - started[o]).total_seconds() for o in started if o in ended]


# ─── what the platform itself says ───────────────────────────────────────────────────────────────────


def assert_ready_and_replicated(platform: ReadmePlatform) -> None:
    """Every service ready with its topics replicated; `saga stack status` shows three copies of each."""
    for service in Service:
        answer = httpx.get(f"{platform.url(service)}/readyz", timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["checks"]["replication"] == "ok"
    status = saga_command("stack", "status", cwd=platform.folder)
    assert status.returncode == 0, status.stderr
    topics = json.loads(status.stdout)["kafka_topics"]
    assert topics["problems"] == [] and "warning" not in status.stderr, status.stdout + status.stderr
    for name in TOPICS:
        assert topics["topics"][name]["replication_factor"] == 3, status.stdout
        assert topics["topics"][name]["leaderless_partitions"] == [], status.stdout


# ─── the test ────────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture()
def three_brokers(tmp_path: Path) -> Iterator[ReadmePlatform]:
    with saga_run(tmp_path, "--kafka-nodes", "3") as platform:
        yield platform


def test_the_readme_three_broker_mode_survives_one_broker_lost_for_good(
    three_brokers: ReadmePlatform,
) -> None:
    platform = three_brokers
    load = ShopLoad(  # type: ignore[arg-type]  # it only needs url(service)
        platform, sagas=SAGAS, shop_key=platform.demo_key("shop"), operator_key=platform.demo_key("operator")
    )
    load.start()
    while len(load.accepted) < SAGAS // 5:
        assert load.running, load.errors
        time.sleep(0.2)

    # Lose, for good, the worst broker to lose: the active controller, when it leads saga partitions
    # (the controller must move before the dead broker's partitions can).
    leaders = asyncio.run(_leaders(",".join(platform.brokers)))
    controller = quorum_leader(",".join(platform.brokers))
    lost = controller if controller in leaders.values() else leaders[("payment", 0)]
    killed_at = datetime.now(UTC)
    os.kill(platform.broker_pids[lost - 1], signal.SIGKILL)
    survivors = ",".join(b for i, b in enumerate(platform.brokers) if i != lost - 1)
    failover = wait_for_new_leaders(survivors, lost, FAILOVER_TIMEOUT)
    failed_over_at = datetime.now(UTC)

    topics, described = kafka_describe(survivors)
    for name in TOPICS:
        assert name in topics, f"topic {name} missing:\n{described}"
    for name, topic in topics.items():
        assert topic.replication_factor == 3, f"{name} is not replicated on three brokers:\n{described}"
        leaderless = [p for p, leader in topic.leaders.items() if leader == "none"]
        assert not leaderless, f"{name} partitions {leaderless} lost their leader:\n{described}"
    for name in TOPICS:
        assert "min.insync.replicas=2" in topics[name].configs, described
    assert failover is not None, f"saga partitions had no new leader {FAILOVER_TIMEOUT:.0f} s after the loss"

    assert_ready_and_replicated(platform)

    load.wait()
    report = wait_until_quiet(platform.database_urls, survivors, timeout=180)
    with psycopg.connect(_plain(platform.database_urls["order"])) as conn:
        statuses = {
            order_id_of(saga): status for saga, status in conn.execute("SELECT order_id, status FROM orders")
        }
    stalled = [s for s in load.accepted if statuses.get(s.order_id) not in EXPECTED[s.kind]]
    assert not stalled, f"{len(stalled)} of {len(load.accepted)} sagas lost or stalled: " + ", ".join(
        f"{s.order_id}({s.kind})={statuses.get(s.order_id)}" for s in stalled[:10]
    )
    report.assert_clean()

    durations = saga_durations(platform.database_urls)
    waits = publish_waits_while_leaderless(platform.database_urls, leaders, lost, killed_at, failed_over_at)
    figures = (
        f"THREE-BROKER broker_lost={lost} was_controller={lost == controller} sagas={len(load.accepted)} "
        f"leader_failover={failover:.1f}s "
        f"longest_publish_wait={longest_publish_wait(platform.database_urls, killed_at):.1f}s "
        f"while_leaderless: lost_leader={waits['lost_leader']:.1f}s kept_leader={waits['kept_leader']:.1f}s "
        f"saga_seconds_median={statistics.median(durations):.1f} max={max(durations):.1f}"
    )
    print(f"\n{figures}")
    (platform.folder / "summary.txt").write_text(figures + "\n")


def test_a_topic_replicated_below_the_setting_is_reported_by_readyz_and_stack_status(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """On one broker the topics have one copy; asked for two, the service says it is not ready, and why to
    an operator."""
    asyncio.run(ensure_topics(Settings.model_validate(local_stack.environment())))
    env = {
        **os.environ,
        **local_stack.environment(),
        "SAGA_STATE_DIR": str(tmp_path),
        "SAGA_TOPIC_REPLICATION_FACTOR": "2",
        "ORDER_HTTP_PORT": str(free_port()),
    }
    order = ServiceProcess(
        Service.ORDER,
        env=env,
        log_path=tmp_path / "order.log",
        base_url=f"http://127.0.0.1:{env['ORDER_HTTP_PORT']}",
    )
    order.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"{order.base_url}/readyz", timeout=5)
                if answer.json()["checks"]["database"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert order.running and time.monotonic() < deadline, order.log_tail()
            time.sleep(0.3)
        assert answer.status_code == 503
        assert answer.json()["checks"]["replication"] == "under-replicated"  # why: for operators only
        operator = {"Authorization": f"Bearer {local_stack.demo_keys()[Scope.OPERATOR]}"}
        told = httpx.get(f"{order.base_url}/readyz", headers=operator, timeout=5).json()
        reason = told["checks"]["replication"]
        assert reason.startswith("under-replicated: topic payment has 1 replica(s), below 2"), reason
        assert "(SAGA_TOPIC_REPLICATION_FACTOR=2)" in reason
        assert "below 2" in order.log_tail(200)  # and the worker said so loudly when it started
    finally:
        order.stop()

    asked_for_two = {"SAGA_STATE_DIR": str(local_stack.state_dir), "SAGA_TOPIC_REPLICATION_FACTOR": "2"}
    status = saga_command("stack", "status", cwd=tmp_path, **asked_for_two)
    assert status.returncode == 0, status.stderr
    assert "warning: topic payment has 1 replica(s), below 2" in " ".join(status.stderr.split())
    assert json.loads(status.stdout)["kafka_topics"]["topics"]["order"]["replication_factor"] == 1
