"""The garbage collector's pauses as /metrics reports them, and startup's objects frozen out of its reach."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client.core import Metric

from common.gc_pauses import PAUSE_BUCKETS, CollectorPauses, freeze_startup, process_pauses


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _buckets(metrics: list[Metric], generation: str) -> dict[str, float]:
    [pauses] = [metric for metric in metrics if metric.name == "saga_gc_pause_seconds"]
    return {
        sample.labels.get("le", sample.name): sample.value
        for sample in pauses.samples
        if sample.labels["generation"] == generation
    }


def test_each_pause_is_counted_in_its_generations_bucket_and_summed() -> None:
    clock = Clock()
    pauses = CollectorPauses(clock)
    for generation, seconds in ((0, 0.0003), (2, 0.12), (2, 0.3)):
        pauses.on_collection("start", {"generation": generation})
        clock.now += seconds
        pauses.on_collection("stop", {"generation": generation, "collected": 0})

    young, full = _buckets(pauses.metrics("order"), "0"), _buckets(pauses.metrics("order"), "2")
    assert young["0.0005"] == 1 and young["+Inf"] == 1
    assert full["0.1"] == 0 and full["0.25"] == 1 and full["+Inf"] == 2  # cumulative; 0.3 s only in +Inf
    assert full["saga_gc_pause_seconds_sum"] == pytest.approx(0.42)
    assert full["saga_gc_pause_seconds_count"] == 2
    assert _buckets(pauses.metrics("order"), "1")["+Inf"] == 0  # every generation has its series
    assert (
        len([key for key in full if key not in ("saga_gc_pause_seconds_sum", "saga_gc_pause_seconds_count")])
        == len(PAUSE_BUCKETS) + 1
    )


def test_a_stop_without_its_start_is_not_counted() -> None:
    pauses = CollectorPauses(Clock())
    pauses.on_collection("stop", {"generation": 2, "collected": 0})  # installed mid-pass
    assert _buckets(pauses.metrics("order"), "2")["+Inf"] == 0


def test_the_process_measures_a_real_collection_once_however_many_times_it_is_asked() -> None:
    first, second = process_pauses(), process_pauses()
    assert first is second
    assert gc.callbacks.count(first.on_collection) == 1
    before = _buckets(first.metrics("order"), "2")["+Inf"]
    gc.collect()
    assert _buckets(first.metrics("order"), "2")["+Inf"] == before + 1


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as before


@pytest.mark.usefixtures("unfrozen_afterwards")
def test_objects_built_before_the_freeze_are_out_of_every_collection_and_counted() -> None:
    built_at_startup = [object()]
    assert any(tracked is built_at_startup for tracked in gc.get_objects())

    frozen = freeze_startup()

    assert frozen > 0 and gc.get_freeze_count() > 0  # (frozen objects freed since leave the count)
    assert not any(tracked is built_at_startup for tracked in gc.get_objects())
    made_later = [object()]
    assert any(tracked is made_later for tracked in gc.get_objects())
    [gauge] = [
        metric for metric in CollectorPauses().metrics("order") if metric.name == "saga_gc_frozen_objects"
    ]
    assert gauge.samples[0].value > 0
