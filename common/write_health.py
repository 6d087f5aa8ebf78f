"""Whether a service's writes reach its database lately: what readiness says when the database answers
a read but refuses writes (a full disk, a server gone read-only), which a `SELECT 1` cannot see.

The consumer's runner and the HTTP views report each transient database failure they retry or answer
503 for, and each commit; readiness reads the last failure, if no commit came after it and it is recent.
No I/O of its own: the figures are what the service's work found anyway. A lost race between two
transactions (a serialization failure or a deadlock, retried as usual) says nothing about the database
and is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# A failure older than this, with nothing tried since, no longer makes the service unready: readiness
# then rests on its own read, until the next write fails again.
REMEMBERED_SECONDS = 10.0


class DatabaseWrites:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at: float | None = None
        self._reason = ""
        self._committed_at: float | None = None

    def failed(self, error: BaseException) -> None:
        cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
        if (getattr(cause, "sqlstate", None) or "").startswith("40"):  # a lost race, retried as usual
            return
        self._failed_at = self._clock()
        first_line = (str(cause).strip().splitlines() or [""])[0]
        self._reason = f"{type(cause).__name__}: {first_line}"

    def committed(self) -> None:
        self._committed_at = self._clock()

    def problem(self) -> str | None:
        """Why writes fail now (the last failure, with its age), or None when none failed lately or a
        commit has succeeded since."""
        if self._failed_at is None:
            return None
        age = self._clock() - self._failed_at
        committed_since = self._committed_at is not None and self._committed_at > self._failed_at
        if age > REMEMBERED_SECONDS or committed_since:
            return None
        return f"writes fail: {self._reason} ({age:.1f} s ago, and none has committed since)"
