"""Running the services as real processes: start, wait until ready, stop, kill (for fault tests)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from common.config import Service, Settings
from common.kafka import ensure_topics
from common.services import SERVICES
from saga_tools.local_stack.private_files import open_private_log, private_dir
from saga_tools.local_stack.process import die_with_parent

# Lets webhooks go to http and local addresses: set where the services and the shops' receivers share a
# machine (`saga run`, the test suites, the benchmark), unless the environment says otherwise.
LOCAL_WEBHOOKS = "WEBHOOK_ALLOW_LOCAL_URLS"
# The saga console's package (`python -m console`), run by `saga run` next to the services.
CONSOLE = "console"


class ServiceFailedToStart(RuntimeError):
    pass


class ServiceProcess:
    """One service (`python -m <service>`) with its own environment and log file; `service` is one of the
    three, or the name of another package run the same way (the console, `python -m console`)."""

    def __init__(
        self, service: Service | str, *, env: Mapping[str, str], log_path: Path, base_url: str
    ) -> None:
        self.service = service
        self.env = dict(env)
        self.log_path = log_path
        self.base_url = base_url
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """The package it runs, which names it in messages."""
        return SERVICES[self.service].module if isinstance(self.service, Service) else self.service

    def start(self) -> None:
        private_dir(self.log_path.parent)  # a log holds customers' addresses: the owner's alone
        log = open_private_log(self.log_path)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C reaches the supervisor, which stops the services; and a
                # supervisor that dies (killed test run, killed `saga run`) takes its services along.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /readyz says the database and the broker are reachable."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceFailedToStart(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServiceFailedToStart(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (Faust stops cleanly and commits); SIGKILL if it does not stop in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.resume()  # a paused process would not act on SIGTERM
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown hook, no final commit."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def pause(self) -> None:
        """SIGSTOP, as a long GC pause or a stalled host would: sockets stay open, nothing is answered."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def stop_all(processes: Iterable[ServiceProcess], timeout: float = 20.0) -> None:
    """Stop every process at once, each as `ServiceProcess.stop` does (SIGTERM, a clean exit, or SIGKILL
    after `timeout`). A service takes about 1.5 s to leave its consumer group and exit: one after the
    other, three took 4.5 s of every stop (of `saga run`, of every test platform and fault stack)."""
    running = list(processes)
    if running:
        with ThreadPoolExecutor(len(running)) as pool:
            list(pool.map(lambda process: process.stop(timeout), running))


def service_processes(
    settings: Settings,
    env: Mapping[str, str],
    log_dir: Path,
    service_env: Mapping[Service, Mapping[str, str]],
) -> dict[Service, ServiceProcess]:
    """One process per declared service (common/services.py), in their order, not started: `python -m
    <module>` with `env` and the service's own variables, logging to `<name>.log`, at its base URL."""
    return {
        spec.service: ServiceProcess(
            spec.service,
            env={**env, **service_env.get(spec.service, {})},
            log_path=log_dir / f"{spec.name}.log",
            base_url=settings.base_url(spec.service),
        )
        for spec in SERVICES.values()
    }


@contextmanager
def running_services(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    ready_timeout: float = 90.0,
    service_env: Mapping[Service, Mapping[str, str]] | None = None,
) -> Iterator[dict[Service, ServiceProcess]]:
    """The three services as processes with `env`: databases migrated, topics created, all ready; stopped
    (cleanly, all at once: `stop_all`) on exit. Used by the test suites and the benchmark. `service_env`
    adds a service's own variables (on a secured broker: its principal, `LocalStack.service_environment`)."""
    from saga_tools import migrations  # Alembic and SQLAlchemy: not for `saga`'s other commands

    # Services on this machine, for tests and the benchmark: shops' receivers are local too.
    env = {LOCAL_WEBHOOKS: "true", **env}
    settings = Settings.model_validate(dict(env))
    for service in Service:
        url = settings.database_url(service)
        assert url is not None, f"{service.value} has no database URL in the environment"
        migrations.upgrade(service, url)
    asyncio.run(ensure_topics(settings))
    processes = service_processes(settings, env, log_dir, service_env or {})
    for process in processes.values():
        process.start()
    try:
        for process in processes.values():
            process.wait_ready(timeout=ready_timeout)
        yield processes
    finally:
        stop_all(processes.values())
