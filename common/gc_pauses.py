"""Python's garbage collector in a service: what startup built kept out of its full collections, and every
collection's pause on /metrics.

CPython's cyclic collector runs on the thread that allocates, so while it runs the service's event loop
stands still: every saga in flight there waits. A full collection (generation 2) visits every object the
process tracks, and a service tracks about 146,000 once its modules are imported and its app built
(Faust, aiokafka, SQLAlchemy, pydantic, OpenTelemetry): 100-210 ms a pass here, run whenever the
objects that survived into the oldest generation since the last one reach a quarter of it (measured:
bench/README.md, "The garbage collector's pauses"). Those objects live as long as the process, so a
full collection finds nothing among them. `freeze_startup` moves them out of every collection's reach
once the worker has started; a full collection then visits only what was made since.

`CollectorPauses` measures each collection (by generation, as a Prometheus histogram) so that a stall of
this kind, if it comes back, shows on the service's /metrics.
"""

from __future__ import annotations

import gc
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

# Seconds: a young collection usually takes well under a millisecond; full ones 0.1-0.21 s unfrozen.
PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
GENERATIONS = (0, 1, 2)


def freeze_startup() -> int:
    """Collect once, then move every object the process tracks to the collector's permanent generation;
    returns how many were frozen. Call it when startup is over (imports, the app, its connections):
    what exists then lives as long as the process, and no later collection visits it again. The price is
    one full collection now (110-250 ms here, right after the service is ready), once for its life."""
    gc.collect()  # garbage made while starting is freed now, not frozen with the rest
    gc.freeze()
    return gc.get_freeze_count()


class CollectorPauses:
    """How long each of the collector's passes stopped the process, by generation (a histogram)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started: float | None = None
        # Per generation: how many pauses fell in each bucket (the last one: above every bound), and
        # their sum in seconds.
        self._counts = {generation: [0] * (len(PAUSE_BUCKETS) + 1) for generation in GENERATIONS}
        self._sums = dict.fromkeys(GENERATIONS, 0.0)

    def on_collection(self, phase: str, info: Mapping[str, Any]) -> None:
        """`gc.callbacks`' signature: called as a pass starts and as it stops."""
        if phase == "start":
            self._started = self._clock()
            return
        if self._started is None:  # installed in the middle of a pass
            return
        pause = self._clock() - self._started
        self._started = None
        generation = int(info["generation"])
        self._counts[generation][bisect_left(PAUSE_BUCKETS, pause)] += 1
        self._sums[generation] += pause

    def metrics(self, service: str) -> list[Metric]:
        pauses = HistogramMetricFamily(
            "saga_gc_pause_seconds",
            "How long each pass of Python's garbage collector stopped the service, by generation"
            " (2: a full collection)",
            labels=["service", "generation"],
        )
        for generation in GENERATIONS:
            cumulative = list(accumulate(self._counts[generation]))
            buckets = [(str(bound), count) for bound, count in zip(PAUSE_BUCKETS, cumulative, strict=False)]
            buckets.append(("+Inf", cumulative[-1]))
            pauses.add_metric([service, str(generation)], buckets, sum_value=self._sums[generation])
        frozen = GaugeMetricFamily(
            "saga_gc_frozen_objects",
            "Objects startup built, kept out of every collection (0: not frozen, every full collection"
            " visits them)",
            labels=["service"],
        )
        frozen.add_metric([service], gc.get_freeze_count())
        return [pauses, frozen]


_process_pauses: CollectorPauses | None = None


def process_pauses() -> CollectorPauses:
    """The process's one `CollectorPauses`, measuring from the first call on (one callback however many
    apps the process builds, as a test session does)."""
    global _process_pauses
    if _process_pauses is None:
        _process_pauses = CollectorPauses()
        gc.callbacks.append(_process_pauses.on_collection)
    return _process_pauses
