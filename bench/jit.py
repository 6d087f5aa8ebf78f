"""The broker's JIT compiler: how much CPU it takes, and a warm-up that lasts until it is quiet.

A freshly started JVM compiles Kafka's hot paths as they get hot: at 10 sagas/s HotSpot's compiler
threads took 100 to 280 ms of CPU a second for the first minute, half of the broker's CPU, on two cores
shared with everything measured. A broker that has run for a while has compiled them, so a step
measured on a compiling broker measures the bench's start, not the platform: its Kafka CPU per saga
was twice a warm broker's (27 against 11 to 13 ms at 10/s), and whatever queued for a core behind the
compiler waited for it. The warm-up therefore goes on until the compiler is quiet, and every step
records what the compiler used during it (`kafka_jit_ms_per_s` in results.json).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# HotSpot's compiler threads ("C1 CompilerThread0", "C2 CompilerThread0", ...), as Linux keeps a thread's
# name: its first 15 characters.
COMPILER_THREADS = ("C1 CompilerThre", "C2 CompilerThre")

# The compiler is quiet below this (a warm broker's compiler still wakes now and then: 1 to 15 ms/s measured).
QUIET_MS_PER_S = 20.0
# Each further warm-up round, and the longest the warm-up goes on after its first round.
ROUND_S = 10.0
LIMIT_S = 120.0


def compiler_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """CPU seconds (user + system) the JVM `pid`'s compiler threads have used so far; None where its
    threads cannot be read (not Linux, or the process is gone)."""
    tasks = proc / str(pid) / "task"
    try:
        threads = list(tasks.iterdir())
    except OSError:
        return None
    ticks = 0
    for thread in threads:
        try:
            name = (thread / "comm").read_text().strip()
            if name not in COMPILER_THREADS:
                continue
            # The fields after the name in parentheses: utime and stime are the 12th and 13th of them.
            fields = (thread / "stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CompilerMeter:
    """What the broker's compiler used between two readings, in ms of CPU per second of wall time."""

    read: Callable[[], float | None]
    clock: Callable[[], float]

    def start(self) -> tuple[float | None, float]:
        return self.read(), self.clock()

    def since(self, mark: tuple[float | None, float]) -> float | None:
        before, began = mark
        now, ended = self.read(), self.clock()
        if before is None or now is None or ended <= began:
            return None
        return (now - before) * 1000 / (ended - began)


@dataclass(frozen=True)
class WarmUp:
    """How the warm-up went: its seconds after the first round, and the compiler's ms/s in its last round
    (None where it cannot be read: then the first round is all the warm-up there is)."""

    extra_seconds: float
    compiler_ms_per_s: float | None

    @property
    def quiet(self) -> bool:
        return self.compiler_ms_per_s is not None and self.compiler_ms_per_s < QUIET_MS_PER_S


def warm_until_quiet(
    run_round: Callable[[float], None], meter: CompilerMeter, first_round_s: float
) -> WarmUp:
    """Run `first_round_s` of load, then rounds of `ROUND_S` while the compiler used `QUIET_MS_PER_S` or
    more in the round before, for at most `LIMIT_S` after the first."""
    mark = meter.start()
    run_round(first_round_s)
    compiling = meter.since(mark)
    extra = 0.0
    while compiling is not None and compiling >= QUIET_MS_PER_S and extra < LIMIT_S:
        mark = meter.start()
        run_round(ROUND_S)
        extra += ROUND_S
        compiling = meter.since(mark)
    return WarmUp(extra, compiling)
