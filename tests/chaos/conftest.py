"""The long network faults run only when selected (`-m network`, as `make faults` does): each takes
minutes, too long for every run of the suite. Without that selection they are deselected (counted as
such in pytest's summary), not collected as skips."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "network" in (config.getoption("markexpr") or ""):
        return
    long_faults = [item for item in items if item.get_closest_marker("network") is not None]
    if long_faults:
        config.hook.pytest_deselected(items=long_faults)
        items[:] = [item for item in items if item.get_closest_marker("network") is None]
