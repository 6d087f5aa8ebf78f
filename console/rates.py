"""Rates of the services' counters, from the overview's own readings: throughput without a Prometheus.

Each reading of the overview (every few seconds, per open tab) adds a sample of each counter; a rate is
the counter's growth over the samples of the last `window` seconds. A counter that went down was reset
(its service restarted): its samples start again, and its rate is unknown until a second one comes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

# Enough for a reading every second of the window, from a few tabs.
_MAX_SAMPLES = 512


class Rates:
    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def per_second(self, counter: str, total: float) -> float | None:
        """Record `total` as the counter's value now; its growth per second over the window, or None
        until two readings at least a second apart are known."""
        now = self._clock()
        samples = self._samples.setdefault(counter, deque(maxlen=_MAX_SAMPLES))
        if samples and total < samples[-1][1]:
            samples.clear()
        samples.append((now, total))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()  # keep one reading from before the window: the rate spans all of it
        first_at, first = samples[0]
        if now - first_at < 1.0:
            return None
        return (total - first) / (now - first_at)
