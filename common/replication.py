"""How many copies of each saga topic the cluster keeps: the rules, pure (the Kafka calls are in kafka.py).

Replication follows the cluster unless SAGA_TOPIC_REPLICATION_FACTOR says otherwise: three copies on three
brokers or more (any one broker can be lost for good), as many as there are brokers below that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Three copies survive the loss of any one broker with two still in sync, so `acks=all` writes go on.
FULL_REPLICATION = 3
SETTING = "SAGA_TOPIC_REPLICATION_FACTOR"


class ReplicationError(ValueError):
    """The asked replication cannot be had on this cluster; the message says why and what to do."""


@dataclass(frozen=True)
class Replication:
    """A topic's replication factor and the `min.insync.replicas` an `acks=all` write waits for."""

    factor: int
    min_insync: int


def replication_for(brokers: int, explicit: int | None = None) -> Replication:
    """The replication saga topics should have on a cluster of `brokers` live brokers.

    Unset (`explicit` None), the factor follows the cluster: min(3, brokers). An explicit factor wins.
    `min.insync.replicas` is 2 with three copies or more (a write survives one broker's loss and is
    still on two), else 1 (with fewer copies, requiring more would stop writes at the first loss).
    """
    if brokers < 1:
        raise ValueError(f"a cluster has at least one broker (got {brokers})")
    factor = explicit if explicit is not None else min(FULL_REPLICATION, brokers)
    return Replication(factor=factor, min_insync=2 if factor >= FULL_REPLICATION else 1)


def refuse_impossible(replication: Replication, brokers: int, where: str) -> None:
    """Raise when topics cannot be created with `replication` on `brokers` brokers (Kafka would refuse)."""
    if replication.factor > brokers:
        raise ReplicationError(
            f"{SETTING}={replication.factor}, but the Kafka cluster at {where} has {brokers} live "
            f"broker(s): it cannot keep {replication.factor} copies of a topic. Unset {SETTING} "
            "(replication then follows the cluster) or start more brokers."
        )


def replication_shortfalls(
    required: Sequence[str], replicas: Mapping[str, Sequence[int]], expected: int
) -> list[str]:
    """Why the `required` topics lack the replication they should have (empty when they have it).

    `replicas` maps each existing topic to the number of replicas assigned to each of its partitions
    (assigned, not in sync: a lost broker does not make a topic under-replicated, a too small factor does).
    """
    problems = []
    for topic in required:
        counts = replicas.get(topic)
        if counts is None:
            problems.append(f"topic {topic} is missing")
        elif min(counts, default=0) < expected:
            problems.append(f"topic {topic} has {min(counts, default=0)} replica(s), below {expected}")
    return problems


def expected_from(brokers: int, explicit: int | None) -> str:
    """Where the expected factor comes from, for messages: the setting, or the cluster's size."""
    if explicit is not None:
        return f"{SETTING}={explicit}"
    return f"{brokers} live broker(s), {SETTING} unset"
