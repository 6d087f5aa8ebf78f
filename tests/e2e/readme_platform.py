"""The platform as the README starts it: `saga run` as a process, from a folder of its own, with a shell
environment that configures nothing of the platform (what a new user has). Shared by the end-to-end tests
of the README's commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from common.config import DEFAULT_CONSOLE_HTTP_PORT, Service, Settings
from common.services import SERVICES
from saga_tools.cli import READY_LINE
from saga_tools.local_stack.ports import is_listening

SAGA = str(Path(sys.executable).with_name("saga"))


def user_environment() -> dict[str, str]:
    """This shell's environment without anything that configures the platform: a new user's shell."""
    settings = {field.alias for field in Settings.model_fields.values() if field.alias}
    return {
        key: value
        for key, value in os.environ.items()
        if key not in settings
        and not key.startswith(("SAGA_", "KAFKA_", "CHAOS_"))
        and not key.endswith(("_DATABASE_URL", "_HTTP_PORT", "_URL"))
        and key != "COLUMNS"
    }


@dataclass
class ReadmePlatform:
    """`saga run` as a process, and what its stack record says about where things are."""

    process: subprocess.Popen[bytes]
    folder: Path
    output: Path
    record: dict[str, Any] = field(default_factory=dict)

    def url(self, service: Service) -> str:
        return f"http://127.0.0.1:{SERVICES[service].http_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{DEFAULT_CONSOLE_HTTP_PORT}"

    @property
    def brokers(self) -> list[str]:
        return str(self.record["environment"]["KAFKA_BOOTSTRAP_SERVERS"]).split(",")

    @property
    def broker_pids(self) -> list[int]:
        return [int(pid) for pid in self.record["started"]["kafka"]["pids"]]

    @property
    def database_urls(self) -> dict[str, str]:
        env = self.record["environment"]
        return {s.value: str(env[f"{s.value.upper()}_DATABASE_URL"]) for s in Service}

    def demo_key(self, scope: str) -> str:
        """The demo API key of `scope` that `saga run` made (and printed the file of)."""
        return (self.folder / ".state" / "api-keys" / f"demo-{scope}.key").read_text().strip()

    def wait_until_running(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.output.read_text(errors="replace"):
            assert self.process.poll() is None, f"`saga run` exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"`saga run` did not come up:\n{self.tail()}"
            time.sleep(0.5)
        self.record = json.loads((self.folder / ".state" / "stack.json").read_text())

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def saga_run(folder: Path, *options: str) -> Iterator[ReadmePlatform]:
    """`saga run [options]` started in `folder` (its state lands in `folder/.state`), running until it
    printed its endpoints; stopped with SIGTERM on exit, and then nothing it started may still run."""
    _wait_for_default_ports()
    output = folder / "saga-run.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [SAGA, "run", *options], cwd=folder, env=user_environment(), stdout=sink, stderr=subprocess.STDOUT
        )
    platform = ReadmePlatform(process, folder, output)
    try:
        platform.wait_until_running()
        yield platform
    finally:
        _stop(platform)


def _wait_for_default_ports(timeout: float = 60.0) -> None:
    """`saga run` needs ports 8001-8004 (the services, the console); one that just stopped (an earlier
    test) may still hold them."""
    deadline = time.monotonic() + timeout
    ports = [*(spec.http_port for spec in SERVICES.values()), DEFAULT_CONSOLE_HTTP_PORT]
    while taken := [port for port in ports if is_listening(port)]:
        assert time.monotonic() < deadline, f"`saga run` needs its default ports; taken: {taken}"
        time.sleep(0.5)


def saga_command(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Another `saga` command, from `cwd`, in the user's environment plus `env`."""
    return subprocess.run(
        [SAGA, *args],
        cwd=cwd,
        env={**user_environment(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _stop(platform: ReadmePlatform) -> None:
    """SIGTERM, as `saga stack down` does; then nothing started from the folder may still run."""
    if platform.process.poll() is None:
        platform.process.send_signal(signal.SIGTERM)
        try:
            platform.process.wait(120)
        except subprocess.TimeoutExpired:
            platform.process.kill()
            platform.process.wait()
            raise AssertionError(f"`saga run` did not stop on SIGTERM:\n{platform.tail()}") from None
    leftovers = _processes_under(platform.folder)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"still running after `saga run` stopped: {[p.cmdline()[:3] for p in leftovers]}"


def _processes_under(folder: Path) -> list[psutil.Process]:
    """Processes running in `folder` or naming it on their command line (the brokers, PostgreSQL)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        named = any(str(folder) in part for part in process.info["cmdline"] or [])
        inside = (process.info["cwd"] or "").startswith(str(folder))
        if (named or inside) and process.pid != os.getpid():
            found.append(process)
    return found
