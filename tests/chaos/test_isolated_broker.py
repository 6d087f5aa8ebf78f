"""One broker of three cut off from the other two: it stays alive, clients still talk to it, and it is no
longer the leader of anything.

The cut is a real partition between Kafka nodes (tests/chaos/peer_links.py): every packet between the
victim and its two peers is dropped, both ways, no RST; the services, their relays and the checker still
reach all three nodes directly. The two others form the KRaft majority: they elect a controller among
themselves if the victim was the active one, fence the victim once its broker session times out, and lead
its partitions themselves. The victim is not told: it keeps answering clients from the metadata it had.

The victim is the node leading the most partitions (the active controller on a tie), chosen anew before
each cut, once every partition has three in-sync replicas again; at least two cuts, more while the load
lasts. While the cut lasts the checkout must
answer within the shop's timeout (10 s): 202, or 503 with Retry-After; never a 500, never a hang. After
the repair the same processes carry on, the victim catches up and rejoins every ISR, and every saga ends
as if nothing had happened.

A `network` test, run by `make faults` (CHAOS_SAGAS=300): a three-node cluster and 30 s cuts are minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from common.config import Service
from saga_tools.local_stack.local_kafka import KafkaCluster
from tests.chaos.harness import EXPECTED, ChaosStack, ShopLoad, chaos_stack, order_statuses, settle
from tests.chaos.outages import Outage, completion_seconds, p50_max

CUT_SECONDS = float(os.environ.get("CHAOS_CUT_SECONDS", "30"))
GAP_SECONDS = 5.0  # after the victim is back in sync, before the next cut
# The first victim leads nothing after it rejoins (Kafka moves leaders back only every 5 minutes), so the
# second cut takes another node: two of the three, one of them the active controller unless it led less.
CUTS_AT_LEAST = 2
Partition = tuple[str, int]


@dataclass(frozen=True)
class NodeView:
    """What one node answers a client's metadata request with: each partition's leader and ISR (node ids)."""

    leaders: dict[Partition, int]
    isr: dict[Partition, list[int]]

    def led_by(self, node_id: int) -> int:
        return sum(leader == node_id for leader in self.leaders.values())

    @property
    def under_replicated(self) -> int:
        return sum(len(replicas) < 3 for replicas in self.isr.values())


async def _metadata(port: int) -> NodeView:
    conn = await create_conn("127.0.0.1", port, request_timeout_ms=5000)
    try:
        # Every topic, the internal ones included (None: all; an empty list would be none).
        response = await conn.send(MetadataRequest(None, allow_auto_topic_creation=False))
    finally:
        conn.close()
    leaders, isr = {}, {}
    for _error, topic, _internal, partitions, *_ in response.topics:
        for _p_error, partition, leader, _replicas, in_sync, *_ in partitions:
            leaders[topic, partition] = leader
            isr[topic, partition] = list(in_sync)
    return NodeView(leaders, isr)


def node_view(kafka: KafkaCluster, index: int) -> NodeView | None:
    """Node `index`'s own view, asked of it alone (None: it did not answer within 5 s)."""
    try:
        return asyncio.run(asyncio.wait_for(_metadata(kafka.ports[index].broker), 6))
    except (KafkaError, OSError, TimeoutError):  # a stall or a refusal alike: no answer, recorded
        return None


def active_controller(kafka: KafkaCluster, index: int) -> int | None:
    """The KRaft leader (node id) as node `index` last recorded it (its quorum-state file)."""
    state = kafka.state_dir / f"node-{index + 1}" / "data" / "__cluster_metadata-0" / "quorum-state"
    try:
        leader = json.loads(state.read_text()).get("leaderId", -1)
    except (OSError, ValueError):
        return None
    return int(leader) if leader >= 0 else None


def choose_victim(led: dict[int, int], controller: int | None) -> int:
    """The node id whose isolation moves the most: the one leading the most partitions; on a tie the
    active controller (its isolation also makes the other two elect a new one), then the lowest id."""
    return max(led, key=lambda node: (led[node], node == controller, -node))


@dataclass
class Isolation:
    victim: int  # node id
    was_controller: bool
    led_before: int  # partitions it led when cut
    outage: Outage
    moved_after: float | None = None  # from the cut until the majority named other leaders for them all
    victim_still_claims: int | None = None  # partitions the victim said it led, halfway (None: no answer)
    readiness: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)  # halfway
    in_sync_after: float | None = None  # from the repair until every partition had 3 in-sync replicas
    # Every few seconds of the cut: the active controller as each node recorded it, and how many
    # partitions each node leads in each node's own view (what a client asking that node is told).
    timeline: list[tuple[float, list[int | None], list[list[int] | None]]] = field(default_factory=list)


def _readiness(chaos: ChaosStack) -> dict[str, tuple[int, dict[str, str]]]:
    seen = {}
    for service in Service:
        try:
            seen[service.value] = chaos.readiness(service)
        except httpx.HTTPError as error:  # recorded: /readyz must answer, checked by the caller
            seen[service.value] = (0, {"error": repr(error)})
    return seen


def _wait_in_sync(kafka: KafkaCluster, timeout: float = 90) -> float | None:
    """Seconds until every node answers and names three in-sync replicas for every partition (None: not
    within `timeout`)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        views = [node_view(kafka, index) for index in range(kafka.nodes)]
        if all(view is not None and view.leaders and not view.under_replicated for view in views):
            return time.monotonic() - began
        time.sleep(0.5)
    return None


def _snapshot(kafka: KafkaCluster, elapsed: float) -> tuple[float, list[int | None], list[list[int] | None]]:
    views = [node_view(kafka, index) for index in range(kafka.nodes)]
    return (
        round(elapsed, 1),
        [active_controller(kafka, index) for index in range(kafka.nodes)],
        [None if v is None else [v.led_by(n) for n in range(1, kafka.nodes + 1)] for v in views],
    )


def _isolate_while_loading(chaos: ChaosStack, load: ShopLoad, seconds: float) -> list[Isolation]:
    kafka, links = chaos.stack.kafka, chaos.peer_links
    assert kafka is not None and links is not None
    isolations: list[Isolation] = []
    time.sleep(3)  # sagas in every step when it begins
    while load.running or len(isolations) < CUTS_AT_LEAST:
        assert _wait_in_sync(kafka) is not None, "the cluster did not get back to three in-sync replicas"
        before = node_view(kafka, 0)
        assert before is not None
        node_ids = list(range(1, kafka.nodes + 1))
        controller = active_controller(kafka, 0)
        victim = choose_victim({node: before.led_by(node) for node in node_ids}, controller)
        index, majority = victim - 1, next(node - 1 for node in node_ids if node != victim)
        isolation = Isolation(victim, victim == controller, before.led_by(victim), Outage(began=time.time()))
        started = time.monotonic()
        links.isolate(index)
        try:
            while (elapsed := time.monotonic() - started) < seconds:
                if isolation.moved_after is None:
                    view = node_view(kafka, majority)
                    if view is not None and view.led_by(victim) == 0:
                        isolation.moved_after = time.monotonic() - started
                if elapsed >= 3 * len(isolation.timeline):
                    isolation.timeline.append(_snapshot(kafka, elapsed))
                if not isolation.readiness and elapsed >= seconds / 2:
                    isolation.readiness = _readiness(chaos)
                    claims = node_view(kafka, index)
                    isolation.victim_still_claims = None if claims is None else claims.led_by(victim)
                time.sleep(0.5)
        finally:
            links.rejoin(index)
        isolation.outage.ended = time.time()
        isolation.outage.checkouts = load.checkouts_between(started + 1, time.monotonic())
        isolation.in_sync_after = _wait_in_sync(kafka)
        isolations.append(isolation)
        time.sleep(GAP_SECONDS)
    return isolations


@pytest.mark.network
def test_a_broker_cut_off_from_the_other_two_is_replaced_as_leader_and_nothing_is_lost_or_doubled(
    tmp_path: Path,
) -> None:
    with chaos_stack(tmp_path, kafka_nodes=3, brokers_apart=True) as chaos:
        load = ShopLoad(chaos)
        load.start()
        began = time.time()
        isolations = _isolate_while_loading(chaos, load, CUT_SECONDS)
        load.wait()
        exited = [w.name for workers in chaos.workers.values() for w in workers if not w.running]
        name = "broker-isolated-from-its-peers"
        # A saga held up past the order's delivery deadline (60 s here) is cancelled by timeout, and
        # delivery confirms if the parcel has not left: a happy saga may then end refunded, as designed,
        # never shipped and refunded (the checker).
        expected = {**EXPECTED, "happy": {"COMPLETED", "REFUNDED"}}
        result = settle(chaos, load, name, len(isolations), expected=expected)
        broken = result.shipped_and_refunded + len(result.report.violations)
        during = [
            completion_seconds(chaos, i.outage.began, i.outage.ended) for i in isolations
        ]  # sagas checked out while a cut lasted
        moved = [i.moved_after for i in isolations if i.moved_after is not None]
        in_sync = [i.in_sync_after for i in isolations if i.in_sync_after is not None]
        line = (
            f"FAULT {name}: {len(isolations)} cut(s) of {CUT_SECONDS:g} s of node"
            f" {[i.victim for i in isolations]} (active controller {[i.was_controller for i in isolations]},"
            f" leading {[i.led_before for i in isolations]} partitions); the majority led them all after"
            f" {[None if i.moved_after is None else round(i.moved_after, 1) for i in isolations]} s"
            f" ({p50_max(moved)}); the victim still claimed {[i.victim_still_claims for i in isolations]}"
            f" halfway; back in every ISR {[None if s is None else round(s, 1) for s in in_sync]} s after"
            f" the repair ({p50_max(in_sync)}); checkout during the cuts"
            f" {[dict(i.outage.checkouts) for i in isolations]}; /readyz halfway"
            f" {[i.readiness for i in isolations]}; saga checkout->COMPLETED: checked out during a cut"
            f" {[p50_max(d) for d in during]}, before the first cut"
            f" {p50_max(completion_seconds(chaos, 0, isolations[0].outage.began))}, all"
            f" {p50_max(completion_seconds(chaos, began))}; every answer {dict(load.statuses)}, hung"
            f" {load.hung}, 503 without Retry-After {load.unavailable_without_retry_after}; {result.sagas}"
            f" sagas, lost {result.lost}, doubled {result.doubled}, broken rules {broken}; orders"
            f" {dict(order_statuses(chaos))}; quiet {result.recovery_seconds:.1f} s after the load"
        )
        timelines = "".join(f"cut of node {i.victim}: {i.timeline}\n" for i in isolations)
        print(line)
        print(timelines)
        with (chaos.state.parent / "summary.txt").open("a") as summary:
            summary.write(line + "\n" + timelines)
        assert not exited, exited
        assert load.statuses[500] == 0 and load.hung == 0 and load.unavailable_without_retry_after == 0
        for isolation in isolations:
            assert isolation.led_before > 0, isolation  # the cut took leadership away from somewhere
            assert isolation.moved_after is not None, isolation  # the majority took over within the cut
            assert isolation.victim_still_claims is not None, isolation  # alive, and answering clients
            assert set(isolation.outage.checkouts) <= {202, 503}, isolation
            assert isolation.in_sync_after is not None, isolation  # it rejoined once the link was back


def test_the_victim_is_the_node_leading_the_most_partitions_and_the_controller_on_a_tie() -> None:
    assert choose_victim({1: 5, 2: 7, 3: 6}, controller=1) == 2
    assert choose_victim({1: 6, 2: 6, 3: 6}, controller=3) == 3
    assert choose_victim({1: 6, 2: 6, 3: 5}, controller=None) == 1
