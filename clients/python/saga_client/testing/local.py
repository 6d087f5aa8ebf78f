"""The platform started by the plugin: the local Kafka and PostgreSQL, and the three services.

It uses the platform's own code (`saga_tools.local_stack.stack.LocalStack`,
`saga_tools.supervisor.running_services`), imported only here and only when a session asks for a
platform, so the client never imports the platform's packages. It holds the processes, which is what
fault hooks and crash reports need.

Its API keys are its own, as its ports are: the stack makes a demo key per scope (shop, carrier,
operator), which the plugin's clients send by role. Only when a session's `PlatformSettings.environment`
names keys of its own (SAGA_API_KEYS…) does the plugin send the client's (SAGA_API_KEY…, `api_keys`).
"""

from __future__ import annotations

import importlib
import shutil
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

from saga_client.config import Role, Service, api_keys_from_env
from saga_client.testing.settings import PlatformSettings

# Variables of the caller's environment that would point the started services elsewhere.
_NOT_INHERITED = (
    "PAYMENT_URL",
    "ORDER_URL",
    "DELIVERY_URL",
    "ORDER_PAYMENT_API_URL",
    "PAYMENT_HTTP_PORT",
    "ORDER_HTTP_PORT",
    "DELIVERY_HTTP_PORT",
    "DELIVERY_AUTO_PROGRESS_SECONDS",
    # Keys: the started platform makes its own (a caller's would replace them, or turn them off).
    "SAGA_API_KEYS",
    "SAGA_API_KEYS_FILE",
    "ORDER_PAYMENT_API_KEY",
    "ORDER_PAYMENT_API_KEY_FILE",
    "SAGA_DISABLE_AUTHENTICATION",
)
INSTALL_HINT = (
    "install the platform beside the client (`pip install -e .` in the platform's repository), or point"
    " the plugin at a running platform: SAGA_PAYMENT_URL, SAGA_ORDER_URL, SAGA_DELIVERY_URL and"
    " SAGA_BOOTSTRAP_SERVERS"
)


class PlatformStartError(Exception):
    """The plugin could not start the platform; the message says what is missing and what to do."""


class ServiceHandle(Protocol):
    """What the plugin does with a service process (`saga_tools.supervisor.ServiceProcess`)."""

    log_path: Path

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = ...) -> int | None: ...

    def kill(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def wait_ready(self, timeout: float = ...) -> None: ...

    def log_tail(self, lines: int = ...) -> str: ...


def _platform(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise PlatformStartError(f"the saga platform is not installed ({missing}); {INSTALL_HINT}") from None


def missing_prerequisites(environ: Mapping[str, str]) -> list[str]:
    """What this machine lacks to run the local stack (Java for Kafka, the PostgreSQL server binaries);
    a part the environment points elsewhere (KAFKA_BOOTSTRAP_SERVERS, *_DATABASE_URL) needs nothing."""
    problems = []
    if not environ.get("KAFKA_BOOTSTRAP_SERVERS") and shutil.which("java") is None:
        problems.append(
            "`java` is not on PATH: install Java 17+ (e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    databases = ("PAYMENT_DATABASE_URL", "ORDER_DATABASE_URL", "DELIVERY_DATABASE_URL")
    if not all(environ.get(name) for name in databases):
        postgres = _platform("saga_tools.local_stack.postgres")
        for binary in ("initdb", "pg_ctl"):
            try:
                postgres.find_binary(binary)
            except postgres.PostgresSetupError as error:
                problems.append(str(error))
                break
    return problems


class LocalPlatform:
    """Kafka, PostgreSQL and the three services under `state_dir`, configured by `settings`."""

    def __init__(self, state_dir: Path, settings: PlatformSettings, environ: Mapping[str, str]) -> None:
        self.state_dir = state_dir
        self.settings = settings
        self._environ = dict(environ)
        self._exit = ExitStack()
        self._stack: Any = None
        self.services: dict[Service, ServiceHandle] = {}
        self.urls: dict[Service, str] = {}
        self.bootstrap_servers = ""
        self.timings: dict[str, float] = {}
        self.expected_down: set[Service] = set()
        self.api_keys: dict[Role, str] = {}  # by role: what the plugin's clients send
        self.authentication = True  # whether the services ask for keys

    def start(self) -> None:
        """Start everything; `PlatformStartError` says what is missing (Java, Maven, PostgreSQL) or which
        service failed, with its log."""
        problems = missing_prerequisites(self._environ)
        if problems:
            raise PlatformStartError("cannot start the saga platform:\n- " + "\n- ".join(problems))
        config = _platform("common.config")
        stack_module = _platform("saga_tools.local_stack.stack")
        supervisor = _platform("saga_tools.supervisor")
        ports = _platform("saga_tools.local_stack.ports")
        began = time.monotonic()
        env = self._environment(ports)
        try:
            self._stack = stack_module.LocalStack(
                config.Settings.model_validate(env), state_dir=self.state_dir / "stack"
            )
            self._exit.callback(self._stack.stop)
            self._stack.start()
            self.timings.update(self._stack.timings)
            env.update(self._stack.environment())
            services_began = time.monotonic()
            processes = self._exit.enter_context(supervisor.running_services(env, self.state_dir / "logs"))
            self.timings["services"] = time.monotonic() - services_began
        except Exception as error:
            self.stop()
            raise PlatformStartError(f"cannot start the saga platform: {error}") from error
        settings = config.Settings.model_validate(env)
        self.services = {Service(service.value): process for service, process in processes.items()}
        self.urls = {Service(service.value): settings.base_url(service) for service in processes}
        self.bootstrap_servers = str(env["KAFKA_BOOTSTRAP_SERVERS"])
        self.authentication = not settings.disable_authentication
        self.api_keys = self._demo_keys() or api_keys_from_env(self._environ)
        self.timings["total"] = time.monotonic() - began

    def _demo_keys(self) -> dict[Role, str]:
        """The stack's demo key of each scope (none when the settings named keys of their own)."""
        demo = self._stack.api_keys
        return {} if demo is None else {Role(scope.value): key for scope, key in demo.demo_keys().items()}

    def stop(self) -> None:
        self._exit.close()

    def _environment(self, ports: Any) -> dict[str, str]:
        env = {key: value for key, value in self._environ.items() if key not in _NOT_INHERITED}
        env.setdefault("SAGA_LOG_LEVEL", "warning")
        env.update(self.settings.variables())
        env["SAGA_STATE_DIR"] = str(self.state_dir)
        for service in Service:
            env[f"{service.value.upper()}_HTTP_PORT"] = str(ports.free_port())
        return env

    # -- faults -------------------------------------------------------------------------------------
    def kill(self, service: Service) -> None:
        """SIGKILL the service, as a crash would; it stays down until `restart`."""
        self.expected_down.add(service)
        self.services[service].kill()

    def stop_service(self, service: Service) -> None:
        """SIGTERM the service: it finishes what it holds, commits and leaves its consumer group."""
        self.expected_down.add(service)
        self.services[service].stop()

    def restart(self, service: Service) -> None:
        """Stop the service (if it runs) and start it again; return once it is ready."""
        process = self.services[service]
        process.stop()
        process.start()
        process.wait_ready(60.0)
        self.expected_down.discard(service)

    def pause(self, service: Service) -> None:
        self.services[service].pause()

    def resume(self, service: Service) -> None:
        self.services[service].resume()

    @property
    def broker_nodes(self) -> int:
        kafka = self._stack.kafka if self._stack is not None else None
        return 0 if kafka is None else int(kafka.nodes)

    def pause_broker(self) -> None:
        """SIGSTOP every Kafka node: connections stay open, nothing is answered."""
        for index in range(self.broker_nodes):
            self._stack.kafka.pause(index)

    def resume_broker(self) -> None:
        for index in range(self.broker_nodes):
            self._stack.kafka.resume(index)

    def heal(self) -> None:
        """Undo every fault: resume the broker and the services, start what is down."""
        self.resume_broker()
        for service, process in self.services.items():
            process.resume()
            if not process.running:
                self.restart(service)

    def died(self) -> dict[Service, str]:
        """Services that stopped though no fault hook stopped them, with the tail of their log."""
        return {
            service: process.log_tail(30)
            for service, process in self.services.items()
            if not process.running and service not in self.expected_down
        }

    def log_path(self, service: Service) -> Path:
        return self.services[service].log_path
