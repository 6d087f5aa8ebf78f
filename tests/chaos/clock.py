"""A service's own clock moved at run time, as an NTP step or a wrong manual setting would move it:
libfaketime (Debian's `faketime` package) preloaded into that service's processes, reading the offset
from a file the test rewrites (re-read at most a second later).

Only the wall clock moves (CLOCK_REALTIME: `time.time`, `datetime.now`); the monotonic clock does not,
as on a real host (FAKETIME_DONT_FAKE_MONOTONIC). libfaketime 0.9.10 then fails an absolute-deadline
`clock_nanosleep` on the monotonic clock with EINVAL, which is Python's `time.sleep`; the services sleep
in their event loop (epoll), which it leaves alone.
"""

from __future__ import annotations

import glob
from pathlib import Path

_LIBRARY_PATTERNS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


def libfaketime() -> Path | None:
    """Where libfaketime is installed, or None."""
    for pattern in _LIBRARY_PATTERNS:
        for found in sorted(glob.glob(pattern)):
            return Path(found)
    return None


class ServiceClock:
    """The offset of one service's wall clock from the host's, in whole seconds (0 at first)."""

    def __init__(self, library: Path, offset_file: Path) -> None:
        self.library = library
        self.offset_file = offset_file
        self.set(0)

    def environment(self) -> dict[str, str]:
        """What a process needs in its environment to run on this clock."""
        return {
            "LD_PRELOAD": str(self.library),
            "FAKETIME_TIMESTAMP_FILE": str(self.offset_file),
            "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def set(self, seconds: int) -> None:
        """Move the clock to `seconds` from the host's (negative: behind); processes see it within 1 s."""
        staged = self.offset_file.with_suffix(".tmp")
        staged.write_text(f"{seconds:+d}\n")
        staged.replace(self.offset_file)  # never a half-written offset
