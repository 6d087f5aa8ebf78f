"""Work a service does on its own clock: on a timer, or as soon as it is woken (and on a timer at least).

Timers select their rows with `FOR UPDATE SKIP LOCKED`, so several workers never do the same work; a
failing round is logged and the next one runs (a timer must never die silently).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

log = logging.getLogger(__name__)


def periodic(app: faust.App, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
    """Run `work` every `seconds` on every worker; a failing round is logged and the next one runs.

    Timers select their rows with `FOR UPDATE SKIP LOCKED`, so several workers never do the same work.
    """

    async def tick() -> None:
        try:
            await work()
        except Exception:
            log.exception("periodic %s failed; will run again in %.1fs", work.__qualname__, seconds)

    tick.__name__ = tick.__qualname__ = f"periodic_{work.__qualname__.replace('.', '_')}"
    app.timer(seconds)(tick)


def on_wake(app: faust.App, seconds: float, work: Callable[[], Awaitable[Any]]) -> Callable[[], None]:
    """Run `work` each time the returned function is called, and every `seconds` at the latest."""
    wakeup = asyncio.Event()

    async def rounds() -> None:
        await run_rounds(wakeup, seconds, work)

    rounds.__name__ = rounds.__qualname__ = f"on_wake_{work.__qualname__.replace('.', '_')}"
    app.task(rounds)
    return wakeup.set


async def run_rounds(wakeup: asyncio.Event, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
    """Forever: wait for `wakeup` (at most `seconds`), then run `work` once.

    Wakes that come while a round runs add one more round, not one each. A failing round is logged and
    the next one runs, as with `periodic`.
    """
    name = getattr(work, "__qualname__", repr(work))
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=seconds)
        wakeup.clear()
        try:
            await work()
        except Exception:
            log.exception("%s failed; will run again in at most %.1fs", name, seconds)
