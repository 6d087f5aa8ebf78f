"""The replication rule: topics follow the cluster they find unless the setting says otherwise."""

from __future__ import annotations

import pytest

from common.replication import (
    Replication,
    ReplicationError,
    expected_from,
    refuse_impossible,
    replication_for,
    replication_shortfalls,
)


@pytest.mark.parametrize(
    ("brokers", "explicit", "expected"),
    [
        (1, None, Replication(factor=1, min_insync=1)),
        (2, None, Replication(factor=2, min_insync=1)),
        (3, None, Replication(factor=3, min_insync=2)),
        (5, None, Replication(factor=3, min_insync=2)),
        (3, 1, Replication(factor=1, min_insync=1)),
        (3, 2, Replication(factor=2, min_insync=1)),
        (5, 5, Replication(factor=5, min_insync=2)),
        (2, 3, Replication(factor=3, min_insync=2)),  # the setting wins; creating is what refuses it
    ],
)
def test_replication_follows_the_cluster_unless_set(
    brokers: int, explicit: int | None, expected: Replication
) -> None:
    assert replication_for(brokers, explicit) == expected


def test_a_cluster_without_brokers_is_not_a_cluster() -> None:
    with pytest.raises(ValueError, match="at least one broker"):
        replication_for(0)


def test_more_copies_than_brokers_is_refused_with_what_to_do() -> None:
    with pytest.raises(ReplicationError) as refused:
        refuse_impossible(replication_for(1, 3), 1, "127.0.0.1:9092")
    message = str(refused.value)
    assert "SAGA_TOPIC_REPLICATION_FACTOR=3" in message and "1 live broker(s)" in message
    assert "127.0.0.1:9092" in message and "Unset SAGA_TOPIC_REPLICATION_FACTOR" in message


@pytest.mark.parametrize(("brokers", "explicit"), [(1, None), (3, None), (3, 3), (3, 1), (5, 3)])
def test_a_replication_the_cluster_can_hold_is_accepted(brokers: int, explicit: int | None) -> None:
    refuse_impossible(replication_for(brokers, explicit), brokers, "here")


@pytest.mark.parametrize(
    ("replicas", "expected", "problems"),
    [
        ({"a": [3, 3, 3], "b": [3]}, 3, []),
        ({"a": [1, 1, 1], "b": [3]}, 3, ["topic a has 1 replica(s), below 3"]),
        ({"a": [3, 2, 3], "b": [3]}, 3, ["topic a has 2 replica(s), below 3"]),
        ({"a": [3]}, 3, ["topic b is missing"]),
        ({"a": [1], "b": [1]}, 1, []),
        ({"a": [3], "b": [3], "other": [1]}, 3, []),  # only the required topics are judged
        ({"a": [], "b": [3]}, 3, ["topic a has 0 replica(s), below 3"]),
    ],
)
def test_topics_replicated_less_than_expected_are_named(
    replicas: dict[str, list[int]], expected: int, problems: list[str]
) -> None:
    assert replication_shortfalls(["a", "b"], replicas, expected) == problems


def test_the_reason_says_whether_the_setting_or_the_cluster_decided() -> None:
    assert expected_from(3, None) == "3 live broker(s), SAGA_TOPIC_REPLICATION_FACTOR unset"
    assert expected_from(3, 2) == "SAGA_TOPIC_REPLICATION_FACTOR=2"
