"""A database password given in a URL, or an API key, is never printed by `saga` nor written to the stack
record."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from common.config import Service, Settings, database_env_var
from saga_tools import cli
from saga_tools.local_stack.stack import LocalStack

SECRET = "s3cret-Pa55"


def _urls() -> dict[str, str]:
    return {
        database_env_var(s): f"postgresql+psycopg://{s.value}:{SECRET}@db.example:5432/{s.value}"
        for s in Service
    }


def test_saga_runs_table_shows_each_database_without_its_password_and_where_each_key_is_not_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.model_validate(_urls())
    stack = LocalStack(settings, state_dir=tmp_path)
    assert stack.api_keys is not None
    stack.api_keys.ensure()
    # Wide enough that no URL is wrapped: a wrapped secret would escape the `not in` below.
    monkeypatch.setattr(cli, "console", Console(width=1000))
    with cli.console.capture() as captured:
        cli._print_endpoints(settings, Path("/tmp/logs"), stack)
    printed = captured.get()
    assert SECRET not in printed
    for service in Service:
        assert f"{service.value}:***@db.example:5432/{service.value}" in printed
    for scope, key in stack.api_keys.demo_keys().items():
        assert key not in printed
        assert f"{scope} API key" in printed
        assert str(tmp_path / "api-keys" / f"demo-{scope}.key") in printed


def test_the_stack_record_is_private_and_leaves_out_urls_that_carry_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every variable set the stack starts nothing, and records only what holds no secret."""
    env = {**_urls(), "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stack = LocalStack(Settings(), state_dir=tmp_path)
    stack.start()
    try:
        text = (tmp_path / "stack.json").read_text()
        mode = stat.S_IMODE((tmp_path / "stack.json").stat().st_mode)
    finally:
        stack.stop()
    assert mode == 0o600
    keys = tmp_path / "api-keys"
    assert SECRET not in text
    for holder in ("demo-shop", "demo-carrier", "demo-operator", "order-service"):
        assert (keys / f"{holder}.key").read_text().strip() not in text
    assert json.loads(text)["environment"] == {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092",
        # Where the keys are, never a key: the files are the owner's alone.
        "SAGA_API_KEYS_FILE": str(keys / "keys"),
        "SAGA_OPERATOR_API_KEY_FILE": str(keys / "demo-operator.key"),
        "ORDER_PAYMENT_API_KEY_FILE": str(keys / "order-service.key"),
    }


def test_stack_status_masks_a_password_an_older_record_still_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [*_urls(), "KAFKA_BOOTSTRAP_SERVERS"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAGA_STATE_DIR", str(tmp_path))
    (tmp_path / "stack.json").write_text(json.dumps({"owner_pid": 1, "environment": _urls()}))
    result = CliRunner().invoke(cli.app, ["stack", "status"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "payment:***@db.example" in result.output
