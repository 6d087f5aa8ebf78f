"""What readiness learns of writes that fail while reads succeed (`common/write_health.py`)."""

from __future__ import annotations

import psycopg
from sqlalchemy import exc

from common.write_health import REMEMBERED_SECONDS, DatabaseWrites


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def disk_full() -> exc.OperationalError:
    cause = psycopg.errors.DiskFull('could not extend file "base/16384/16385": No space left on device')
    return exc.OperationalError("INSERT INTO payments …", {}, cause)


def test_a_failed_write_is_the_problem_with_its_cause_and_the_commits_since() -> None:
    clock = Clock()
    writes = DatabaseWrites(clock)
    assert writes.problem() is None
    writes.failed(disk_full())
    clock.now += 2
    writes.committed()  # a write that still fit in a free page
    problem = writes.problem()
    assert problem is not None and "DiskFull" in problem and "No space left on device" in problem
    assert "2.0 s ago; 1 committed since" in problem


def test_a_commit_after_a_failure_does_not_hide_it_while_it_is_recent() -> None:
    clock = Clock()
    writes = DatabaseWrites(clock)
    writes.failed(disk_full())
    for _ in range(3):
        writes.committed()
    assert writes.problem() is not None  # on a full disk some writes still commit


def test_a_failure_older_than_the_memory_is_forgotten() -> None:
    clock = Clock()
    writes = DatabaseWrites(clock)
    writes.failed(disk_full())
    clock.now += REMEMBERED_SECONDS + 0.1
    assert writes.problem() is None


def test_a_lost_race_between_transactions_says_nothing_about_the_database() -> None:
    writes = DatabaseWrites(Clock())
    races = (psycopg.errors.SerializationFailure("could not serialize"), psycopg.errors.DeadlockDetected("x"))
    for cause in races:
        writes.failed(exc.OperationalError("UPDATE …", {}, cause))
    assert writes.problem() is None


def test_a_connection_refused_before_any_driver_error_is_named_too() -> None:
    writes = DatabaseWrites(Clock())
    writes.failed(ConnectionRefusedError(111, "Connection refused"))
    problem = writes.problem()
    assert problem is not None and "ConnectionRefusedError" in problem
