"""The bench's view of the broker's JIT compiler (bench/jit.py): what it reads, and how long it warms up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import jit
from bench.report import tables


def fake_thread(proc: Path, pid: int, tid: int, name: str, utime: int, stime: int) -> None:
    task = proc / str(pid) / "task" / str(tid)
    task.mkdir(parents=True)
    (task / "comm").write_text(f"{name}\n")
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    (task / "stat").write_text(f"{tid} ({name}) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0\n")


def test_only_the_compiler_threads_cpu_is_counted(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    fake_thread(tmp_path, 7, 8, "C2 CompilerThre", utime=3 * tick, stime=1 * tick)
    fake_thread(tmp_path, 7, 9, "C1 CompilerThre", utime=1 * tick, stime=0)
    fake_thread(tmp_path, 7, 10, "data-plane-kafk", utime=50 * tick, stime=9 * tick)
    fake_thread(tmp_path, 7, 11, "java (main)", utime=20 * tick, stime=2 * tick)  # a ")" in a name
    assert jit.compiler_cpu_seconds(7, proc=tmp_path) == pytest.approx(5.0)


def test_a_process_that_is_gone_cannot_be_read(tmp_path: Path) -> None:
    assert jit.compiler_cpu_seconds(12345, proc=tmp_path) is None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_a_process_without_a_jit_has_used_none() -> None:
    assert jit.compiler_cpu_seconds(os.getpid()) == 0.0


class ScriptedBroker:
    """A broker whose compiler uses the given ms/s in each round of load, one round after another."""

    def __init__(self, ms_per_s: list[float | None]) -> None:
        self._rates: Iterator[float | None] = iter(ms_per_s)
        self.rounds: list[float] = []
        self._cpu: float | None = 0.0
        self._clock = 0.0

    def run_round(self, seconds: float) -> None:
        rate = next(self._rates)
        self.rounds.append(seconds)
        self._clock += seconds
        self._cpu = None if rate is None or self._cpu is None else self._cpu + rate * seconds / 1000

    def meter(self) -> jit.CompilerMeter:
        return jit.CompilerMeter(read=lambda: self._cpu, clock=lambda: self._clock)


def test_the_warm_up_goes_on_while_the_broker_compiles_and_stops_once_it_is_quiet() -> None:
    broker = ScriptedBroker([180.0, 60.0, 12.0, 500.0])
    warmed = jit.warm_until_quiet(broker.run_round, broker.meter(), first_round_s=15)
    assert broker.rounds == [15, jit.ROUND_S, jit.ROUND_S]
    assert warmed == jit.WarmUp(extra_seconds=2 * jit.ROUND_S, compiler_ms_per_s=pytest.approx(12.0))
    assert warmed.quiet


def test_a_broker_quiet_after_the_first_round_gets_no_more() -> None:
    broker = ScriptedBroker([5.0, 500.0])
    warmed = jit.warm_until_quiet(broker.run_round, broker.meter(), first_round_s=15)
    assert broker.rounds == [15]
    assert warmed.quiet


def test_the_warm_up_gives_up_after_its_limit_and_says_the_broker_still_compiles() -> None:
    rounds_in_limit = int(jit.LIMIT_S / jit.ROUND_S)
    broker = ScriptedBroker([200.0] * (rounds_in_limit + 5))
    warmed = jit.warm_until_quiet(broker.run_round, broker.meter(), first_round_s=15)
    assert len(broker.rounds) == 1 + rounds_in_limit
    assert warmed.extra_seconds == jit.LIMIT_S
    assert not warmed.quiet


def test_where_the_compiler_cannot_be_read_the_first_round_is_the_whole_warm_up() -> None:
    broker = ScriptedBroker([None, 500.0])
    warmed = jit.warm_until_quiet(broker.run_round, broker.meter(), first_round_s=15)
    assert broker.rounds == [15]
    assert warmed == jit.WarmUp(extra_seconds=0.0, compiler_ms_per_s=None)
    assert not warmed.quiet


def step(jit_ms_per_s: float | None) -> dict[str, object]:
    return {
        "offered_rate": 10.0,
        "sustainable": True,
        "completed_per_second": 10.0,
        "finished": 100,
        "accepted": 100,
        "p50_ms": 40.0,
        "p95_ms": 60.0,
        "p99_ms": 70.0,
        "max_ms": 80.0,
        "backlog_growth_per_second": 0.0,
        "schedule_slip_ms": 2.0,
        "cpu_ms_per_saga": {"kafka": 12.0},
        "kafka_jit_ms_per_s": jit_ms_per_s,
    }


def test_the_report_shows_what_the_brokers_compiler_used_in_each_step() -> None:
    report = tables({"seconds": 30, "machine": {}, "steps": {"platform": [step(143.4), step(None)]}})
    assert "| broker's JIT ms/s |" in report
    assert "| kafka 12 | 143 |" in report
    assert "| kafka 12 | — |" in report
