"""Session fixtures: one real Kafka broker and one real PostgreSQL server for the whole test run.

Both are started by the project's own code (saga_tools/local_stack), or taken from KAFKA_BOOTSTRAP_SERVERS
and the three *_DATABASE_URL variables when those are set.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.config import Service, load_settings
from saga_tools.local_stack.stack import LocalStack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(load_settings(), state_dir=tmp_path_factory.mktemp("stack"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: LocalStack) -> str:
    return local_stack.kafka_bootstrap_servers


@pytest.fixture(scope="session")
def database_urls(local_stack: LocalStack) -> dict[str, str]:
    return {service.value: local_stack.database_url(service) for service in Service}


LONG_MARKERS = ("network", "long_fault")  # `make faults` runs them, each minutes long at 300 sagas


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A long fault (marker `network` or `long_fault`) runs only when selected by a marker expression
    naming its marker (`pytest -m long_fault`, `make faults`); otherwise it is deselected, and pytest's
    summary counts it so."""
    selected = config.getoption("markexpr") or ""
    unselected = [marker for marker in LONG_MARKERS if marker not in selected]
    long_faults = [item for item in items if any(item.get_closest_marker(m) for m in unselected)]
    if long_faults:
        config.hook.pytest_deselected(items=long_faults)
        chosen = set(map(id, long_faults))
        items[:] = [item for item in items if id(item) not in chosen]
