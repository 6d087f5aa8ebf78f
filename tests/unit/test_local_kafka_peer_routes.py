"""A three-node cluster with peer routes: every way one node reaches another goes through that pair's
route, the controllers included, whose address a KRaft leader hands its followers itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from saga_tools.local_stack.local_kafka import KafkaCluster, NodePorts, controller_host


def _route(source: int, target: int, port: int) -> str:
    return f"10.250.{min(source, target)}{max(source, target)}.2:{port}"


def _cluster(tmp_path: Path, route: object = _route) -> KafkaCluster:
    cluster = KafkaCluster(tmp_path / "jars", tmp_path / "kafka", nodes=3, peer_route=route)  # type: ignore[arg-type]
    cluster.ports = [NodePorts(9000 + k, 9100 + k, [9200 + 10 * k + j for j in range(3)]) for k in range(3)]
    return cluster


def _properties(cluster: KafkaCluster, index: int) -> dict[str, str]:
    lines = cluster._properties(index).splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_each_node_resolves_the_other_controllers_to_its_routes_to_them_and_its_own_to_loopback(
    tmp_path: Path,
) -> None:
    cluster = _cluster(tmp_path)
    for index in range(3):
        hosts = {
            name: address
            for line in cluster.routed_hosts(index).splitlines()
            for address, *names in [line.split()]
            for name in names
        }
        assert hosts[controller_host(index)] == "127.0.0.1"
        for peer in {0, 1, 2} - {index}:
            assert f"{hosts[controller_host(peer)]}:{9100 + peer}" == _route(index, peer, 9100 + peer)


def test_a_controller_listens_and_is_named_by_its_name_never_by_an_address_that_bypasses_the_routes(
    tmp_path: Path,
) -> None:
    cluster = _cluster(tmp_path)
    for index in range(3):
        settings = _properties(cluster, index)
        assert f"CONTROLLER://{controller_host(index)}:{9100 + index}" in settings["listeners"].split(",")
        assert settings["controller.quorum.voters"] == ",".join(
            f"{k + 1}@{controller_host(k)}:{9100 + k}" for k in range(3)
        )


def test_a_route_that_changes_the_controllers_port_is_refused(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path, route=lambda source, target, port: f"10.250.0.2:{port + 1}")
    with pytest.raises(ValueError, match="keep the controller's port"):
        cluster.routed_hosts(0)
