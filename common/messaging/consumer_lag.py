"""How far behind a worker is on each partition it holds: the log's end minus the next offset it applies.

Kafka's own figure (`kafka-consumer-groups --describe`) counts from the group's committed offset, which
trails what was applied by up to a commit interval. Here the next offset comes from what the runner has
finished (committed to the database, which is what counts), so a worker that is caught up shows 0, and
one whose runner is stuck retrying shows every event that waits behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from prometheus_client.core import GaugeMetricFamily, Metric

from common.messaging.dead_letters import RawMessage

log = logging.getLogger(__name__)

# The broker is asked for the partitions' ends on every scrape; a broker that does not answer in this
# long leaves the lag out of that scrape (readiness reports the broker), not the scrape waiting.
_END_OFFSETS_TIMEOUT_SECONDS = 2.0


class Partition(NamedTuple):
    topic: str
    partition: int


class AppliedOffsets:
    """The next offset to apply on each partition, as the runner finishes messages; forgotten when the
    partition is taken away (its next holder may be elsewhere by the time it comes back)."""

    def __init__(self) -> None:
        self._next: dict[Partition, int] = {}

    def record(self, messages: Sequence[RawMessage]) -> None:
        for message in messages:  # in order within a partition: the last one is the furthest
            self._next[Partition(message.topic, message.partition)] = message.offset + 1

    def forget(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self._next.pop(partition, None)

    def as_mapping(self) -> Mapping[Partition, int]:
        return self._next


def partition_lags(
    ends: Mapping[Partition, int], applied: Mapping[Partition, int], positions: Mapping[Partition, int]
) -> dict[Partition, int]:
    """Each partition's lag: its end minus the next offset to apply, from what was applied or, on a
    partition nothing was applied on since this worker took it, the consumer's position. A partition
    whose position is not known yet is left out rather than guessed."""
    lags = {}
    for partition, end in ends.items():
        next_offset = applied.get(partition, positions.get(partition))
        if next_offset is not None:
            lags[partition] = max(0, end - next_offset)
    return lags


def lag_gauge(service: str, lags: Mapping[Partition, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        "saga_consumer_lag",
        "Events on a partition this worker holds that it has not applied yet",
        labels=["service", "topic", "partition"],
    )
    for partition, lag in sorted(lags.items()):
        gauge.add_metric([service, partition.topic, str(partition.partition)], lag)
    return gauge


class Consumer(Protocol):
    """What the lag reads from Faust's consumer (`app.consumer`)."""

    def assignment(self) -> set[Partition]: ...

    async def highwaters(self, *partitions: Partition) -> Mapping[Partition, int]: ...

    async def position(self, tp: Partition) -> int | None: ...


def lag_source(
    service: str, consumer: Callable[[], Consumer], applied: AppliedOffsets
) -> Callable[[], Awaitable[list[Metric]]]:
    """The lag of the partitions the worker holds now, as a metric source read on each scrape."""

    async def read() -> list[Metric]:
        try:
            source = consumer()
            held = [Partition(tp.topic, tp.partition) for tp in source.assignment()]
            if not held:
                return [lag_gauge(service, {})]
            ends = await asyncio.wait_for(source.highwaters(*held), _END_OFFSETS_TIMEOUT_SECONDS)
            positions = {}
            for partition in held:
                if partition not in applied.as_mapping():
                    position = await source.position(partition)
                    if position is not None:
                        positions[partition] = position
        except Exception as error:
            log.info("%s: consumer lag left out of this scrape: %r", service, error)
            return [lag_gauge(service, {})]
        known_ends = {Partition(tp.topic, tp.partition): end for tp, end in ends.items() if end is not None}
        return [lag_gauge(service, partition_lags(known_ends, applied.as_mapping(), positions))]

    return read
