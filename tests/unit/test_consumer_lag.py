"""A worker's lag per partition (`common/messaging/consumer_lag.py`): the log's end minus the next offset
it applies, from what its runner finished, read on each scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from common.messaging.consumer_lag import AppliedOffsets, Partition, lag_source, partition_lags
from common.messaging.dead_letters import RawMessage

PAYMENT_0, PAYMENT_1, DELIVERY_0 = Partition("payment", 0), Partition("payment", 1), Partition("delivery", 0)


def message(partition: Partition, offset: int) -> RawMessage:
    return RawMessage(
        topic=partition.topic, partition=partition.partition, offset=offset, key=None, value=b""
    )


class FakeConsumer:
    def __init__(
        self, held: set[Partition], ends: Mapping[Partition, int], positions: Mapping[Partition, int]
    ) -> None:
        self.held, self.ends, self.positions = held, ends, positions
        self.stalled = False

    def assignment(self) -> set[Partition]:
        return self.held

    async def highwaters(self, *partitions: Partition) -> Mapping[Partition, int]:
        if self.stalled:
            await asyncio.sleep(60)
        return {partition: self.ends[partition] for partition in partitions}

    async def position(self, tp: Partition) -> int | None:
        return self.positions.get(tp)


def lags_of(metrics: list[object]) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for metric in metrics
        for sample in metric.samples  # type: ignore[attr-defined]
    }


def test_the_next_offset_is_the_one_after_the_last_message_applied_on_each_partition() -> None:
    applied = AppliedOffsets()
    applied.record([message(PAYMENT_0, 7), message(PAYMENT_1, 3), message(PAYMENT_0, 8)])
    assert applied.as_mapping() == {PAYMENT_0: 9, PAYMENT_1: 4}
    applied.forget([PAYMENT_0])  # taken away in a rebalance
    assert applied.as_mapping() == {PAYMENT_1: 4}


def test_lag_counts_from_what_was_applied_else_from_the_consumers_position() -> None:
    lags = partition_lags(
        ends={PAYMENT_0: 20, PAYMENT_1: 5, DELIVERY_0: 9},
        applied={PAYMENT_0: 12, PAYMENT_1: 5},
        positions={PAYMENT_0: 20, DELIVERY_0: 6},
    )
    assert lags == {PAYMENT_0: 8, PAYMENT_1: 0, DELIVERY_0: 3}


def test_a_partition_whose_position_is_unknown_is_left_out_rather_than_guessed() -> None:
    assert partition_lags(ends={PAYMENT_0: 20}, applied={}, positions={}) == {}


async def test_a_scrape_reports_each_held_partitions_lag() -> None:
    consumer = FakeConsumer(
        {PAYMENT_0, DELIVERY_0}, ends={PAYMENT_0: 10, DELIVERY_0: 4}, positions={DELIVERY_0: 4}
    )
    applied = AppliedOffsets()
    applied.record([message(PAYMENT_0, 5)])
    read = lag_source("order", lambda: consumer, applied)
    assert lags_of(await read()) == {("payment", "0"): 4.0, ("delivery", "0"): 0.0}


async def test_a_broker_that_does_not_answer_leaves_the_lag_out_instead_of_holding_the_scrape(
    monkeypatch: object,
) -> None:
    import common.messaging.consumer_lag as consumer_lag

    monkeypatch.setattr(consumer_lag, "_END_OFFSETS_TIMEOUT_SECONDS", 0.05)  # type: ignore[attr-defined]
    consumer = FakeConsumer({PAYMENT_0}, ends={PAYMENT_0: 10}, positions={})
    consumer.stalled = True
    read = lag_source("order", lambda: consumer, AppliedOffsets())
    metrics = await asyncio.wait_for(read(), 5)
    assert [metric.name for metric in metrics] == ["saga_consumer_lag"] and lags_of(metrics) == {}
