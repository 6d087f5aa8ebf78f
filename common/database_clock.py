"""The database's wall clock, as a service last read it, carried forward by the host's monotonic clock.

The platform keeps one time, PostgreSQL's: deadlines, retries, leases and housekeeping are `now()` in
SQL. What a service stamps outside a statement is stamped with this clock, not the host's: an event's
`occurred_at` (by which a rebuild orders events of several services, and from which a saga's duration
counts), a webhook's signature timestamp (which a shop checks against its own clock). A host whose
wall clock jumps (an NTP step, a wrong setting) does not move it: the monotonic clock never jumps.
`DATABASE_CLOCK` is the process's; each service reads its database's clock at start and every
READ_EVERY_SECONDS (`common/app.py`), and the host's wall clock stands in until the first reading.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

# How often each service reads its database's clock (`common/app.py`): between two readings the monotonic
# clock carries it, off by their rates' difference only (parts per million).
READ_EVERY_SECONDS = 10.0


class DatabaseClock:
    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall  # only until the first reading
        self._offset: float | None = None

    def read(self, database_epoch: float, at: float | None = None) -> None:
        """The database's clock said `database_epoch` (Unix seconds) at monotonic instant `at` (now)."""
        self._offset = database_epoch - (self._monotonic() if at is None else at)

    def epoch(self) -> float:
        """The database's time now, in Unix seconds (the host's before any reading)."""
        if self._offset is None:
            return self._wall()
        return self._monotonic() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC)


DATABASE_CLOCK = DatabaseClock()
