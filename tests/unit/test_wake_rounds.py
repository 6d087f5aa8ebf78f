"""`run_rounds`: the loop behind delivery's sweep, run on demand and on a timer at the latest."""

from __future__ import annotations

import asyncio

import pytest

from common.scheduling import run_rounds


class Work:
    """Counts its rounds and reports each one's end; can fail its first round or hold a round open."""

    def __init__(self, *, fail_first: bool = False, hold: asyncio.Event | None = None) -> None:
        self.rounds = 0
        self.started = asyncio.Event()
        self.finished: asyncio.Queue[int] = asyncio.Queue()
        self._fail_first = fail_first
        self._hold = hold

    async def __call__(self) -> None:
        self.rounds += 1
        self.started.set()
        try:
            if self._hold is not None:
                await self._hold.wait()
            if self._fail_first and self.rounds == 1:
                raise RuntimeError("first round fails")
        finally:
            self.finished.put_nowait(self.rounds)

    async def next_finished(self) -> int:
        return await asyncio.wait_for(self.finished.get(), 2.0)


async def _settle() -> None:
    """Let everything that is ready run (a few ticks of the event loop)."""
    for _ in range(50):
        await asyncio.sleep(0)


async def test_a_wake_runs_a_round_without_waiting_for_the_timer() -> None:
    wakeup, work = asyncio.Event(), Work()
    loop = asyncio.create_task(run_rounds(wakeup, 3600.0, work))
    try:
        await _settle()
        assert work.rounds == 0
        wakeup.set()
        assert await work.next_finished() == 1
    finally:
        loop.cancel()


async def test_wakes_during_a_round_add_one_more_round_not_one_each() -> None:
    wakeup, hold = asyncio.Event(), asyncio.Event()
    work = Work(hold=hold)
    loop = asyncio.create_task(run_rounds(wakeup, 3600.0, work))
    try:
        wakeup.set()
        await asyncio.wait_for(work.started.wait(), 2.0)
        for _ in range(5):
            wakeup.set()
        hold.set()
        assert [await work.next_finished(), await work.next_finished()] == [1, 2]
        await _settle()
        assert work.rounds == 2
    finally:
        loop.cancel()


async def test_without_wakes_the_timer_runs_rounds() -> None:
    work = Work()
    loop = asyncio.create_task(run_rounds(asyncio.Event(), 0.01, work))
    try:
        assert [await work.next_finished() for _ in range(3)] == [1, 2, 3]
    finally:
        loop.cancel()


async def test_a_failing_round_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    wakeup, work = asyncio.Event(), Work(fail_first=True)
    loop = asyncio.create_task(run_rounds(wakeup, 3600.0, work))
    try:
        wakeup.set()
        assert await work.next_finished() == 1
        await _settle()
        wakeup.set()
        assert await work.next_finished() == 2
        assert "first round fails" in caplog.text
    finally:
        loop.cancel()
