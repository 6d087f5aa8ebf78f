"""`saga run` refuses to start when a service's port is taken: another platform answering there would
pass for its services (their readiness, and the demo stock loaded with the wrong keys)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from saga_tools.cli import app
from saga_tools.local_stack.ports import free_port


def test_saga_run_stops_before_starting_anything_when_a_service_port_is_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("PAYMENT_HTTP_PORT", str(free_port()))
        monkeypatch.setenv("ORDER_HTTP_PORT", str(port))
        monkeypatch.setenv("DELIVERY_HTTP_PORT", str(free_port()))
        monkeypatch.setenv("SAGA_STATE_DIR", str(tmp_path / "state"))

        result = CliRunner().invoke(app, ["run"])

    assert result.exit_code == 2
    assert f"port {port} (order) is in use" in result.output and "ORDER_HTTP_PORT" in result.output
    assert not (tmp_path / "state").exists()  # no stack was started


def test_saga_run_stops_before_starting_anything_when_the_console_port_is_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for service in ("PAYMENT", "ORDER", "DELIVERY"):
            monkeypatch.setenv(f"{service}_HTTP_PORT", str(free_port()))
        monkeypatch.setenv("CONSOLE_HTTP_PORT", str(port))
        monkeypatch.setenv("SAGA_STATE_DIR", str(tmp_path / "state"))

        result = CliRunner().invoke(app, ["run"])

    assert result.exit_code == 2
    assert f"port {port} (console) is in use" in result.output and "CONSOLE_HTTP_PORT" in result.output
    assert not (tmp_path / "state").exists()
