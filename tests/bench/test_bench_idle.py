"""`python -m bench.idle`'s arithmetic and how it finds the services `saga run` started (no stack)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench.idle import per_second_ms, service_pids


def test_each_services_cpu_is_given_in_milliseconds_per_second_with_the_services_total() -> None:
    before = {"payment": 10.0, "order": 20.0, "delivery": 30.0}
    after = {"payment": 10.6, "order": 20.45, "delivery": 30.48}

    figures = per_second_ms(before, after, seconds=60)

    assert figures == {"payment": 10.0, "order": 7.5, "delivery": 8.0, "services": 25.5}


@pytest.fixture
def lookalikes() -> Iterator[dict[str, int]]:
    """Children whose command lines read like `saga run`'s services, one like the console, one not."""
    sleeper = "import time; time.sleep(60)"
    commands = {
        "payment": [sys.executable, "-c", sleeper, "-m", "payment"],
        "order": [sys.executable, "-c", sleeper, "-m", "order"],
        "console": [sys.executable, "-c", sleeper, "-m", "console"],
        "other": [sys.executable, "-c", sleeper],
    }
    children = {name: subprocess.Popen(command) for name, command in commands.items()}
    try:
        yield {name: child.pid for name, child in children.items()}
    finally:
        for child in children.values():
            child.kill()
            child.wait()


def test_the_services_are_found_by_the_module_they_run_and_nothing_else_is(
    lookalikes: dict[str, int],
) -> None:
    found = service_pids(os.getpid())

    assert found == {"payment": lookalikes["payment"], "order": lookalikes["order"]}
