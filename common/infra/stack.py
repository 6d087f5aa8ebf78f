"""The local stack: Kafka and PostgreSQL started by the project, unless the environment points elsewhere.

Used alike by `saga run`, the test suite and CI. Each part stands aside when configured: with
KAFKA_BOOTSTRAP_SERVERS set no broker is started, and with a service's <SERVICE>_DATABASE_URL set that
service uses the given database (no local server is started when all three are set).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.config import Service, Settings, database_env_var
from common.infra.kafka import KafkaCluster, ensure_kafka_jars
from common.infra.postgres import PostgresServer
from common.redact import has_password


class LocalStack:
    def __init__(self, settings: Settings, *, kafka_nodes: int = 1, state_dir: Path | None = None) -> None:
        self.settings = settings
        self.kafka_nodes = kafka_nodes
        self.state_dir = (state_dir or settings.state_dir).resolve()
        self.kafka: KafkaCluster | None = None
        self.postgres: PostgresServer | None = None
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

    def environment(self) -> dict[str, str]:
        """The variables a service process needs to use this stack."""
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers}
        for service in Service:
            env[database_env_var(service)] = self.database_url(service)
        return env

    def start(self) -> None:
        """Start what the settings do not point elsewhere. Kafka and PostgreSQL start side by side: their
        one-shot preparation (formatting Kafka's storage, initdb) runs in two threads, then both servers
        are launched from this thread (which they must not outlive) and waited for."""
        if not self.settings.kafka_bootstrap_servers:
            began = time.monotonic()
            jars = ensure_kafka_jars(self.settings.cache_dir, self.settings.kafka_version)
            self.timings["kafka_jars"] = time.monotonic() - began
            self.kafka = KafkaCluster(jars, self.state_dir / "kafka", nodes=self.kafka_nodes)
        if any(not self.settings.database_url(service) for service in Service):
            self.postgres = PostgresServer(self.state_dir / "postgres", tls=self.settings.postgres_tls)
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
        (self.state_dir / "stack.json").write_text(json.dumps(record, indent=2))
