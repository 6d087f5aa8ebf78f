"""Pointed at existing servers through the environment, the local stack starts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import Service, database_env_var, load_settings
from saga_tools.local_stack.stack import LocalStack


def test_with_every_variable_set_nothing_new_is_started(
    kafka_bootstrap: str, database_urls: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    for service in Service:
        monkeypatch.setenv(database_env_var(service), database_urls[service.value])

    stack = LocalStack(load_settings(), state_dir=tmp_path)
    stack.start()
    try:
        assert stack.kafka is None and stack.postgres is None
        assert not (tmp_path / "kafka").exists() and not (tmp_path / "postgres").exists()
        assert stack.api_keys is not None  # authentication stays on: the demo keys are made
        assert stack.environment() == {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            **{database_env_var(s): database_urls[s.value] for s in Service},
            **stack.api_keys.environment(),
        }
    finally:
        stack.stop()
