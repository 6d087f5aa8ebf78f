"""What every `saga` command shares: the consoles, the exit codes scripts rely on, and failing clearly."""

from __future__ import annotations

import json
from enum import IntEnum

import typer
from rich.console import Console

from common.config import Settings, load_settings
from common.kafka_security import KafkaConnection, KafkaSecurityError, kafka_connection

console = Console()
err = Console(stderr=True)


class Exit(IntEnum):
    """Exit codes of the `saga` command (documented in docs/operators/cli.md)."""

    OK = 0
    USAGE = 2  # wrong arguments or missing configuration
    UNAVAILABLE = 3  # a service, the broker or a database did not answer
    FAILED = 4  # the operation ran and failed (e.g. a service refused it)
    NOT_FOUND = 5  # no such order, dead letter, ...
    CONFLICT = 6  # not now: the service's workers are running, the target database is not empty
    DIFFERENT = 7  # a rebuild differs from the live state


def fail(message: str, code: Exit = Exit.FAILED) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(int(code))


def operator_settings() -> Settings:
    """Settings from the environment, completed from the local stack `saga run` recorded, if any.

    An operator's shell usually lacks the variables `saga run` handed its services; the stack record in
    the state folder has them. Variables that are set always win.
    """
    settings = load_settings()
    record = settings.state_dir / "stack.json"
    if not record.exists():
        return settings
    recorded = json.loads(record.read_text()).get("environment", {})
    current = {k: v for k, v in settings.model_dump(by_alias=True).items() if v is not None}
    return Settings.model_validate({**recorded, **current})


def require_kafka(settings: Settings) -> KafkaConnection:
    """The operator's Kafka connection (with the operator principal's credentials when the broker is
    secured); a missing or inconsistent setting is a usage error that names the variable."""
    if not settings.kafka_bootstrap_servers:
        raise fail(
            "KAFKA_BOOTSTRAP_SERVERS is not set and no local stack is running (start one with `saga run`)",
            Exit.USAGE,
        )
    try:
        return kafka_connection(settings)
    except KafkaSecurityError as exc:
        raise fail(str(exc), Exit.USAGE) from exc
