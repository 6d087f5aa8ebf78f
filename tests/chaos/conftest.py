"""The long network faults run only when selected (`-m network`, as `make faults` does): each takes
minutes, too long for every run of the suite."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "network" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a long network fault: `make faults` (pytest -m network) runs it")
    for item in items:
        if item.get_closest_marker("network") is not None:
            item.add_marker(skip)
