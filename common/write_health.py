"""Whether a service's writes reach its database lately: what readiness says when the database answers
a read but refuses writes (a full disk, a server gone read-only), which a `SELECT 1` cannot see.

The consumer's runner and the HTTP views report each transient database failure they retry or answer
503 for, and each commit; readiness fails while the last failure is recent, naming it and how many
commits got through since. A commit in between does not clear it: on a full disk some writes still fit
in free pages, and a readiness that flipped back on each of them would hide the fault it should name.
No I/O of its own. A lost race between two transactions (a serialization failure or a deadlock, retried
as usual) says nothing about the database and is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# How long a failure keeps the service unready: past it, readiness rests on its own read again (so at
# most this long after the database is back).
REMEMBERED_SECONDS = 5.0


class DatabaseWrites:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at: float | None = None
        self._reason = ""
        self._committed_since = 0

    def failed(self, error: BaseException) -> None:
        cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
        if (getattr(cause, "sqlstate", None) or "").startswith("40"):  # a lost race, retried as usual
            return
        self._failed_at = self._clock()
        self._committed_since = 0
        first_line = (str(cause).strip().splitlines() or [""])[0]
        self._reason = f"{type(cause).__name__}: {first_line}"

    def committed(self) -> None:
        self._committed_since += 1

    def problem(self) -> str | None:
        """Why writes fail now (the last failure, its age, and the commits since), or None when none
        failed in the last REMEMBERED_SECONDS."""
        if self._failed_at is None:
            return None
        age = self._clock() - self._failed_at
        if age > REMEMBERED_SECONDS:
            return None
        return f"writes fail: {self._reason} ({age:.1f} s ago; {self._committed_since} committed since)"
