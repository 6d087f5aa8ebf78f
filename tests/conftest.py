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


LONG_FAULT = "long_fault"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A long fault (marker `long_fault`: minutes each, at 300 sagas) runs only when selected by a marker
    expression naming it (`pytest -m long_fault`); the default run skips it and says how to run it."""
    if LONG_FAULT in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason=f"a long fault: run it with `pytest -m {LONG_FAULT}`")
    for item in items:
        if item.get_closest_marker(LONG_FAULT) is not None:
            item.add_marker(skip)
