"""CPU seconds used by the processes under test (services, Kafka, PostgreSQL and its backends)."""

from __future__ import annotations

from collections.abc import Mapping

import psutil


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, plus that of its children (live and exited: PostgreSQL's backends)."""
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
            except psutil.NoSuchProcess:
                continue  # exited meanwhile: counted in the parent's children times from now on
        return total
    except psutil.NoSuchProcess:
        return 0.0


GENERATOR = "generator"
"""The benchmark's own process: the load generator and the terminal-event watcher (and, for the raw chain,
its driver). Reported because it runs on the same two cores as everything it measures."""


RECEIVER = "receiver"
"""The bench's webhook receiver (bench/receiver.py): a shop's endpoint, on the same two cores, reported apart
from the platform's processes."""


def own_cpu_seconds() -> float:
    """User + system CPU of this process alone (its children are the services, counted on their own)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def sample(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def used(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}
