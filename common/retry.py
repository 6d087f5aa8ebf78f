"""Exponential backoff with jitter, for retrying in place without hammering a recovering server."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.1
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2
    _attempt: int = field(default=0, init=False)

    def next_delay(self) -> float:
        """The next wait in seconds: initial * factor^attempt, capped, with ±jitter so retries spread out."""
        base = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    @property
    def attempts(self) -> int:
        return self._attempt

    def reset(self) -> None:
        self._attempt = 0
