"""The local stack: Kafka and PostgreSQL started by the project, unless the environment points elsewhere.

Used alike by `saga run`, the test suite and CI. Each part stands aside when configured: with
KAFKA_BOOTSTRAP_SERVERS set no broker is started, and with a service's <SERVICE>_DATABASE_URL set that
service uses the given database (no local server is started when all three are set).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.auth import Scope
from common.config import Service, Settings, database_env_var
from common.services import SERVICES
from saga_tools.local_stack.kafka_access import provision_saga_access
from saga_tools.local_stack.kafka_acls import OPERATOR
from saga_tools.local_stack.local_api_keys import LocalApiKeys
from saga_tools.local_stack.local_kafka import KafkaCluster, PeerRoute, ensure_kafka_jars
from saga_tools.local_stack.local_kafka_security import LocalKafkaSecurity
from saga_tools.local_stack.postgres import PostgresServer
from saga_tools.local_stack.private_files import write_private
from saga_tools.redact import has_password


class LocalStack:
    def __init__(
        self,
        settings: Settings,
        *,
        kafka_nodes: int = 1,
        state_dir: Path | None = None,
        kafka_secure: bool | None = None,
        postgres_settings: Mapping[str, str] | None = None,
        kafka_listeners: Mapping[str, tuple[int, str]] | None = None,
        kafka_peer_route: PeerRoute | None = None,
    ) -> None:
        """`kafka_listeners`: more listeners of a local one-node broker (`KafkaCluster`'s extra_listeners);
        `kafka_peer_route`: where the nodes of a local three-node cluster reach each other (peer_route)."""
        self.settings = settings
        self.kafka_listeners = dict(kafka_listeners or {})
        self.kafka_peer_route = kafka_peer_route
        self.postgres_settings = dict(postgres_settings or {})
        self.kafka_nodes = kafka_nodes
        # Only for a broker the stack starts itself; one given by KAFKA_BOOTSTRAP_SERVERS keeps its settings.
        self.kafka_secure = settings.kafka_secure if kafka_secure is None else kafka_secure
        self.state_dir = (state_dir or settings.state_dir).resolve()
        self.kafka: KafkaCluster | None = None
        self.postgres: PostgresServer | None = None
        # Demo keys, unless the settings name keys of their own (or turn authentication off).
        self.api_keys: LocalApiKeys | None = (
            None
            if settings.api_keys or settings.api_keys_file or settings.disable_authentication
            else LocalApiKeys(self.state_dir / "api-keys")
        )
        self.timings: dict[str, float] = {}

    @property
    def kafka_bootstrap_servers(self) -> str:
        if self.settings.kafka_bootstrap_servers:
            return self.settings.kafka_bootstrap_servers
        assert self.kafka is not None, "the stack is not started"
        return self.kafka.bootstrap_servers

    def database_url(self, service: Service) -> str:
        given = self.settings.database_url(service)
        if given:
            return given
        assert self.postgres is not None, "the stack is not started"
        return self.postgres.database_url(service)

    @property
    def kafka_security(self) -> LocalKafkaSecurity | None:
        """The local broker's principals and certificates when it was started secured, else None."""
        return self.kafka.security if self.kafka is not None else None

    def environment(self) -> dict[str, str]:
        """The variables a process needs to use this stack: on a secured local broker, as the operator
        principal (what `saga` commands and the stack record get; services use `service_environment`)."""
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers}
        if self.kafka_security is not None:
            env.update(self.kafka_security.client_environment(OPERATOR))
        for service in Service:
            env[database_env_var(service)] = self.database_url(service)
        if self.api_keys is not None:
            env.update(self.api_keys.environment())
        return env

    def demo_keys(self) -> dict[Scope, str]:
        """The demo API key of each scope (LookupError when the settings name keys of their own)."""
        if self.api_keys is None:
            raise LookupError("this stack made no demo keys: the settings name keys of their own")
        return self.api_keys.demo_keys()

    def service_environment(self, service: Service) -> dict[str, str]:
        """The variables of one service's processes: `environment()`, with the service's own principal."""
        env = self.environment()
        if self.kafka_security is not None:
            env.update(self.kafka_security.client_environment(SERVICES[service].kafka_principal))
        return env

    def service_environments(self) -> dict[Service, dict[str, str]]:
        """What differs per service (its principal on a secured broker; nothing otherwise)."""
        if self.kafka_security is None:
            return {}
        return {
            spec.service: self.kafka_security.client_environment(spec.kafka_principal)
            for spec in SERVICES.values()
        }

    def start(self) -> None:
        """Start what the settings do not point elsewhere. Kafka and PostgreSQL start side by side: their
        one-shot preparation (formatting Kafka's storage, initdb) runs in two threads, then both servers
        are launched from this thread (which they must not outlive) and waited for."""
        if not self.settings.kafka_bootstrap_servers:
            began = time.monotonic()
            jars = ensure_kafka_jars(self.settings.cache_dir, self.settings.kafka_version)
            self.timings["kafka_jars"] = time.monotonic() - began
            self.kafka = KafkaCluster(
                jars,
                self.state_dir / "kafka",
                nodes=self.kafka_nodes,
                secure=self.kafka_secure,
                extra_listeners=self.kafka_listeners,
                peer_route=self.kafka_peer_route,
            )
        if any(not self.settings.database_url(service) for service in Service):
            self.postgres = PostgresServer(
                self.state_dir / "postgres", tls=self.settings.postgres_tls, settings=self.postgres_settings
            )
        if self.api_keys is not None:
            self.api_keys.ensure()
        parts: list[KafkaCluster | PostgresServer] = [p for p in (self.kafka, self.postgres) if p is not None]
        began = time.monotonic()
        try:
            with ThreadPoolExecutor(max(1, len(parts))) as pool:
                for prepared in [pool.submit(part.prepare) for part in parts]:
                    prepared.result()
            self.timings["prepare"] = time.monotonic() - began
            for part in parts:
                part.launch()
            for part in parts:
                part.wait_ready()
                self.timings["kafka" if part is self.kafka else "postgres"] = time.monotonic() - began
            if self.kafka is not None and self.kafka.security is not None:
                began = time.monotonic()
                provision_saga_access(self.kafka, self.settings)
                self.timings["kafka_acls"] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        self._record()

    def stop(self) -> None:
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()
        (self.state_dir / "stack.json").unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # No secret in the record: the local databases' URLs name a password file, and a URL given with a
        # password is left out (the shell that set it has it; `operator_settings` reads it from there).
        environment = {name: value for name, value in self.environment().items() if not has_password(value)}
        record = {
            "owner_pid": os.getpid(),  # `saga stack down` asks this process to stop everything in order
            "environment": environment,
            "started": {
                "kafka": {"nodes": self.kafka_nodes, "pids": self.kafka.pids} if self.kafka else None,
                "postgres": {"pid": self.postgres.pid, "port": self.postgres.port} if self.postgres else None,
            },
            "start_seconds": {name: round(value, 2) for name, value in self.timings.items()},
        }
        # 0600 all the same: it says where the key files and the password file are, and what runs where.
        write_private(self.state_dir / "stack.json", json.dumps(record, indent=2))
