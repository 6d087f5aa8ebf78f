"""The platform started by the plugin: the local Kafka and PostgreSQL, and the three services.

It uses the platform's own code (`saga_tools.local_stack.stack.LocalStack`,
`saga_tools.supervisor.running_services`), imported only here and only when a session asks for a
platform, so the client never imports the platform's packages. It holds the processes, which is what
fault hooks and crash reports need: the services, the broker, and the one PostgreSQL server that holds
the three services' databases.

With `PlatformSettings.broker_links`, each service reaches the broker through a `Link` of its own (a
forwarder on 127.0.0.1 the plugin can cut): the broker gets one more listener per service, advertised
at that service's link, so a Kafka client, which goes where the metadata sends it, never bypasses it.
Everything else (the topics' setup, `saga_events`) reaches the broker directly. Links need a broker the
plugin started, one node, not secured (`broker_links_refused`); without them the rest of the platform
runs as before.

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
from saga_client.testing.links import Link
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


class FaultUnavailable(Exception):
    """This platform cannot take the fault asked for (a part the plugin did not start); the message says
    why."""


def broker_links_refused(environ: Mapping[str, str], *, secure: bool, wanted: bool) -> str | None:
    """Why the services do not reach the broker through links the plugin cuts, or None when they do: the
    session must ask for them (they cost each message a pass through the test process), the broker must
    be the one the plugin starts (not one KAFKA_BOOTSTRAP_SERVERS names), and plain (a secured broker's
    listeners are SASL_SSL; a link's extra listener is PLAINTEXT)."""
    if not wanted:
        return (
            "the services reach the broker directly; a session that cuts them off asks for links:"
            " PlatformSettings(broker_links=True) in its saga_platform_settings, or the ini option"
            " saga_broker_links = true"
        )
    if environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "the broker is not the plugin's: KAFKA_BOOTSTRAP_SERVERS names one"
    if secure:
        return "the plugin's broker runs secured (SAGA_KAFKA_SECURE): links are for a plain broker"
    return None


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
        self.broker_links: dict[Service, Link] = {}  # empty when `broker_links_refused` says why
        self.broker_links_refused: str | None = None
        self._database_paused = False

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
            settings = config.Settings.model_validate(env)
            self.broker_links_refused = broker_links_refused(
                env, secure=settings.kafka_secure, wanted=self.settings.broker_links
            )
            if self.broker_links_refused is None:
                for service in Service:
                    link = Link(ports.free_port(), name=f"{service.value}-broker")
                    self._exit.callback(link.close)  # after the services and the stack have stopped
                    self.broker_links[service] = link
            self._stack = stack_module.LocalStack(
                settings,
                state_dir=self.state_dir / "stack",
                kafka_listeners={
                    f"LINK{service.value.upper()}": (link.upstream_port, link.address)
                    for service, link in self.broker_links.items()
                },
            )
            self._exit.callback(self._stack.stop)
            # A database a test left paused would not stop: resumed first (callbacks run last-in first).
            self._exit.callback(self.resume_database)
            self._stack.start()
            self.timings.update(self._stack.timings)
            env.update(self._stack.environment())
            services_began = time.monotonic()
            processes = self._exit.enter_context(
                supervisor.running_services(
                    env,
                    self.state_dir / "logs",
                    service_env={
                        service: {"KAFKA_BOOTSTRAP_SERVERS": link.address}
                        for service, link in self.broker_links.items()
                    },
                )
            )
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

    # The database: one PostgreSQL server holds the three services' databases (unless *_DATABASE_URL
    # named others), so each of these faults reaches every service whose database it holds.
    def _postgres(self) -> Any:
        postgres = self._stack.postgres if self._stack is not None else None
        if postgres is None:
            raise FaultUnavailable(
                "the databases are not the plugin's: PAYMENT_DATABASE_URL, ORDER_DATABASE_URL and"
                " DELIVERY_DATABASE_URL name servers of their own"
            )
        return postgres

    def kill_database(self) -> None:
        """SIGKILL the PostgreSQL server and its backends, as a crash would; down until
        `restart_database` (which runs crash recovery)."""
        postgres = self._postgres()
        self._database_paused = False
        postgres.kill()

    def restart_database(self) -> None:
        """Start the database server again on its port (stopping it first if it runs); return once it
        accepts connections. The services are not restarted: their pools connect anew."""
        postgres = self._postgres()
        postgres.resume()  # a paused server would not act on the stop that comes first
        self._database_paused = False
        postgres.restart()

    def pause_database(self) -> None:
        """SIGSTOP the server and every backend: connections stay open, statements and connects wait."""
        postgres = self._postgres()
        self._database_paused = True
        postgres.pause()

    def resume_database(self) -> None:
        postgres = self._stack.postgres if self._stack is not None else None
        if postgres is not None:
            postgres.resume()
        self._database_paused = False

    @property
    def database_running(self) -> bool:
        postgres = self._stack.postgres if self._stack is not None else None
        return postgres is not None and bool(postgres.running)

    # The links between each service and the broker.
    def _broker_link(self, service: Service) -> Link:
        if self.broker_links_refused is not None:
            raise FaultUnavailable(
                f"no link between the services and the broker to cut: {self.broker_links_refused}"
            )
        return self.broker_links[service]

    def cut_from_broker(self, service: Service) -> None:
        """Cut `service`'s link to the broker: its connections stay open and get no answer, as in a
        network partition; every other process still reaches the broker."""
        self._broker_link(service).cut()

    def reconnect_to_broker(self, service: Service) -> None:
        self._broker_link(service).repair()

    def heal(self) -> None:
        """Undo every fault, the servers before the services (a service is ready only once it reaches
        them): the database resumed or started again, the links repaired, the broker resumed, then the
        services resumed and what is down started."""
        postgres = self._stack.postgres if self._stack is not None else None
        if postgres is not None:
            if self._database_paused:
                self.resume_database()
            if not postgres.running:
                self.restart_database()
        for link in self.broker_links.values():
            link.repair()
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
