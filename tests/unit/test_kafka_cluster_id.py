"""Cluster ids for the local Kafka: Kafka's format, and never mistaken for a command-line option."""

from __future__ import annotations

import base64

from saga_tools.local_stack.local_kafka import new_cluster_id


def test_cluster_ids_are_sixteen_bytes_of_url_safe_base64_never_starting_with_a_dash() -> None:
    ids = [new_cluster_id() for _ in range(2000)]  # a leading dash would appear ~30 times without the guard
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert len(set(ids)) == len(ids)
