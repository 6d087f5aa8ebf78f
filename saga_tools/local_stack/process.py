"""Child-process helpers for the local infrastructure."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when the process that started it dies (run in the child).

    A test run or `saga run` that is killed must not leave brokers and databases running behind it.
    """
    # Not Linux: the caller's stop() remains the only cleanup.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
