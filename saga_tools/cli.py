"""The `saga` command: run the platform locally, migrate databases, load stock, inspect the local stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from common.config import MissingDatabaseUrl, Service, Settings, database_env_var, load_settings
from common.kafka import ensure_topics, read_cluster_topics, replication_summary
from common.kafka_security import KafkaSecurityError, kafka_connection
from common.replication import ReplicationError
from common.service_apis import bearer
from common.services import SERVICES
from common.tracing import traces_configured
from saga_tools.local_stack.ports import is_listening
from saga_tools.local_stack.stack import LocalStack
from saga_tools.ops.command_kit import Exit, console, err, fail, operator_settings
from saga_tools.ops.operator_cli import register as register_operator_commands
from saga_tools.redact import has_password, mask_url
from saga_tools.supervisor import CONSOLE, LOCAL_WEBHOOKS, ServiceProcess, service_processes, stop_all

app = typer.Typer(help="Operate the order/payment/delivery saga platform.", no_args_is_help=True)
register_operator_commands(app)
stack_app = typer.Typer(help="The local Kafka and PostgreSQL.", no_args_is_help=True)
inventory_app = typer.Typer(help="Delivery's stock.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(inventory_app, name="inventory")

KAFKA_SECURITY_HELP = (
    "start the local broker secured: TLS, a SCRAM-SHA-512 principal per service and the operator, ACLs "
    "(also SAGA_KAFKA_SECURE=true)"
)
DEMO_STOCK = Path(__file__).resolve().parent / "resources" / "demo-stock.json"

# The last line `saga run` prints, once every service is ready: what scripts and tests wait for.
READY_LINE = "Ctrl-C stops everything."


@app.command()
def migrate(
    service: Annotated[Service | None, typer.Argument(help="one service; all three if omitted")] = None,
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="downgrade to --revision (default base)")] = False,
) -> None:
    """Bring each service's database to the latest schema (or down, with --down)."""
    from saga_tools import migrations  # Alembic and SQLAlchemy: only for the commands that migrate

    settings = load_settings()
    for target in [service] if service else list(Service):
        url = settings.database_url(target)
        if not url:
            raise fail(
                f"{database_env_var(target)} is not set (or use `saga run`, which starts a database)",
                Exit.USAGE,
            )
        if down:
            migrations.downgrade(target, url, "base" if revision == "head" else revision)
        else:
            migrations.upgrade(target, url, revision)
        console.print(f"{target.value}: at {migrations.current_revision(target, url) or 'base'}")


@app.command()
def run(
    kafka_nodes: Annotated[int, typer.Option(help="1, or 3 for a replicated cluster")] = 1,
    auto_progress: Annotated[
        float,
        typer.Option(help="seconds before a scheduled shipment ships and then delivers (demo); 0 = off"),
    ] = 2.0,
    seed: Annotated[bool, typer.Option(help="load the demo stock when the inventory is empty")] = True,
    kafka_security: Annotated[bool, typer.Option("--kafka-security", help=KAFKA_SECURITY_HELP)] = False,
    traces: Annotated[
        bool,
        typer.Option(
            "--traces/--no-traces",
            help="the services send their spans to the console, which draws each saga's trace (unless"
            " OTEL_EXPORTER_OTLP_ENDPOINT names a collector of yours)",
        ),
    ] = True,
) -> None:
    """Run the platform: local Kafka and PostgreSQL (unless configured), migrations, the three services.

    Ctrl-C stops everything in order.
    """

    settings = load_settings()
    _require_free_ports(settings)
    stack = LocalStack(
        settings, kafka_nodes=kafka_nodes, kafka_secure=kafka_security or settings.kafka_secure
    )
    services: list[ServiceProcess] = []
    stopping = _stop_on_sigterm()
    try:
        running = _start_stack(stack)
        logs = settings.state_dir / "logs"
        to_console = traces and not traces_configured(os.environ)
        # The console first: it needs nothing but the services' URLs, and their first spans go to it.
        _start_console(running, logs, started=services, receives_traces=to_console)
        tracing = _console_tracing(running) if to_console else {}
        _start_services(stack, running, logs, auto_progress, started=services, extra=tracing)
        if seed:
            _seed_demo_stock(running.base_url(Service.DELIVERY), running.operator_api_key_value())
        _print_endpoints(running, logs, stack)
        _restart_crashed_until_stopped(services, stopping)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        stop_all(services)
        stack.stop()
        console.print("stopped.")


def _require_free_ports(settings: Settings) -> None:
    """Stop before starting anything when a service's port is taken: the services would not bind it, and
    whatever answers there (another `saga run`, with other keys) would pass for them."""
    ports = {
        spec.name: (settings.http_port(spec.service), spec.http_port_variable) for spec in SERVICES.values()
    }
    ports[CONSOLE] = (settings.console_http_port, "CONSOLE_HTTP_PORT")
    for name, (port, variable) in ports.items():
        if is_listening(port, settings.http_host):
            raise fail(
                f"port {port} ({name}) is in use, another `saga run`? Stop it, or set {variable}",
                Exit.USAGE,
            )


def _console_tracing(running: Settings) -> dict[str, str]:
    """The services' spans to the console, every second (the SDK's default waits five)."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": running.console_base_url(), "OTEL_BSP_SCHEDULE_DELAY": "1000"}


def _start_services(
    stack: LocalStack,
    running: Settings,
    logs: Path,
    auto_progress: float,
    *,
    started: list[ServiceProcess],
    extra: dict[str, str],
) -> None:
    """Start the three services on the stack and wait until each is ready. Each is added to `started` as
    it starts, so the caller stops what did start when a later one fails."""
    env = {LOCAL_WEBHOOKS: "true", **os.environ, **stack.environment(), **extra}
    if auto_progress > 0 and "DELIVERY_AUTO_PROGRESS_SECONDS" not in os.environ:
        env["DELIVERY_AUTO_PROGRESS_SECONDS"] = str(auto_progress)
    # Each with its principal, on a secured broker.
    for process in service_processes(running, env, logs, stack.service_environments()).values():
        process.start()
        started.append(process)
    with console.status("waiting for the services to be ready…"):
        for process in started:
            process.wait_ready()


def _start_console(
    running: Settings, logs: Path, *, started: list[ServiceProcess], receives_traces: bool
) -> None:
    """Start the saga console next to the services and wait until it answers. It gets the environment
    `saga run` was given, not the stack's: it reads the services' APIs with the key an operator signs in
    with, never a database, so it needs neither a database URL nor a key of its own."""
    process = ServiceProcess(
        CONSOLE,
        env={**os.environ, "CONSOLE_TRACES": str(receives_traces).lower()},
        log_path=logs / f"{CONSOLE}.log",
        base_url=running.console_base_url(),
    )
    process.start()
    started.append(process)
    with console.status("waiting for the console…"):
        process.wait_ready()


def _restart_crashed_until_stopped(services: list[ServiceProcess], stopping: threading.Event) -> None:
    """Supervise until SIGTERM (Ctrl-C raises instead). A crashed worker is restarted (Kafka redelivers
    what it had not committed); a crash loop is not hidden behind restarts: five within a minute stop
    the platform with the log."""
    restarts: list[float] = []
    while not stopping.is_set():
        for process in services:
            if process.running:
                continue
            restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
            err.print(f"[yellow]{process.name} exited; restarting[/yellow]. Log tail:")
            err.print(process.log_tail(10))
            if len(restarts) >= 5:
                raise fail("services keep crashing; see the logs above", Exit.FAILED)
            process.start()
        time.sleep(0.5)


def _stop_on_sigterm() -> threading.Event:
    """SIGTERM (e.g. from `saga stack down`) stops the main loop as Ctrl-C does."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    return stopping


def _start_stack(stack: LocalStack) -> Settings:
    """Start Kafka and PostgreSQL (unless configured), migrate the three databases, create the topics."""
    from saga_tools import migrations  # Alembic and SQLAlchemy: only for the commands that migrate

    with console.status("starting Kafka and PostgreSQL…"):
        stack.start()
    running = Settings.model_validate({**os.environ, **stack.environment()})
    with console.status("migrating the three databases…"):
        for service in Service:
            url = running.database_url(service)
            assert url is not None
            migrations.upgrade(service, url)
    try:
        asyncio.run(ensure_topics(running))
    except ReplicationError as exc:
        raise fail(str(exc), Exit.USAGE) from exc
    return running


def _seed_demo_stock(delivery_url: str, operator_key: str | None) -> None:
    headers = bearer(operator_key)
    existing = httpx.get(f"{delivery_url}/inventory", timeout=5, headers=headers)
    if existing.status_code in (401, 403):
        raise fail(
            "delivery refused the operator key while loading the demo stock: set SAGA_OPERATOR_API_KEY (or"
            " SAGA_OPERATOR_API_KEY_FILE) to a key with the operator scope, or run with --no-seed",
            Exit.USAGE,
        )
    if existing.raise_for_status().json()["items"]:
        return
    response = httpx.post(
        f"{delivery_url}/inventory", content=DEMO_STOCK.read_bytes(), timeout=10, headers=headers
    )
    response.raise_for_status()


def _print_endpoints(settings: Settings, logs: Path, stack: LocalStack) -> None:
    table = Table(title="saga platform is running", show_header=True)
    table.add_column("what")
    table.add_column("where")
    table.add_row("Kafka", _kafka_line(settings))
    for service in Service:
        table.add_row(f"{service.value} API", f"{settings.base_url(service)}  (openapi: /openapi.json)")
        table.add_row(f"{service.value} database", mask_url(settings.database_url(service) or ""))
    table.add_row("saga console", f"{settings.console_base_url()}  (sign in with the operator API key)")
    table.add_row("logs", str(logs))
    if stack.api_keys is not None:
        for scope, key_file in stack.api_keys.demo_key_files().items():
            table.add_row(f"{scope} API key", f"{key_file}")
    elif settings.disable_authentication:
        table.add_row("API keys", "[bold red]OFF (SAGA_DISABLE_AUTHENTICATION): anyone may call anything[/]")
    console.print(table)
    payment, order = settings.base_url(Service.PAYMENT), settings.base_url(Service.ORDER)
    body = (
        '{"customer_id": "c-1", "currency": "EUR", "payment_method": "tok_visa", '
        '"lines": [{"sku": "BOOK-1", "quantity": 1, "unit_price_minor": 1999}], '
        '"shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Berlin", '
        '"postal_code": "10115", "country": "DE"}}'
    )
    shop_key = (
        f"$(cat {stack.api_keys.demo_key_files()['shop']})" if stack.api_keys is not None else "$SAGA_API_KEY"
    )
    console.print("\nPlace an order:", style="bold")
    console.print(
        f'  curl -si -X POST {payment}/checkout -H "Authorization: Bearer {shop_key}"'
        f" -H 'Idempotency-Key: demo-1' -H 'Content-Type: application/json' -d '{body}'",
        soft_wrap=True,
    )
    console.print(
        f'  curl -s -H "Authorization: Bearer {shop_key}" {order}/orders/<order_id>   # status and timeline',
        soft_wrap=True,
    )
    console.print(f"\n{READY_LINE}")


def _kafka_line(settings: Settings) -> str:
    """The broker's address and, when secured, how clients authenticate (the principal, never a secret)."""
    try:
        return kafka_connection(settings).describe()
    except KafkaSecurityError:
        return settings.kafka_bootstrap_servers or ""


@inventory_app.command("load")
def inventory_load(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help='JSON: {"items": [{"sku", "on_hand"}]}')
    ],
) -> None:
    """Load a stock file into the delivery service (sets each SKU's units on hand)."""
    settings = operator_settings()
    url = settings.base_url(Service.DELIVERY)
    try:
        response = httpx.post(
            f"{url}/inventory",
            content=path.read_bytes(),
            timeout=30,
            headers=bearer(settings.operator_api_key_value()),
        )
    except httpx.HTTPError as exc:
        raise fail(f"delivery service unreachable at {url}: {exc}", Exit.UNAVAILABLE) from exc
    if response.status_code != 200:
        raise fail(f"delivery refused the file ({response.status_code}): {response.text}")
    console.print(f"loaded {len(response.json()['items'])} SKUs")


@stack_app.command("up")
def stack_up(
    kafka_nodes: Annotated[int, typer.Option(help="1, or 3 for a replicated cluster")] = 1,
    kafka_security: Annotated[bool, typer.Option("--kafka-security", help=KAFKA_SECURITY_HELP)] = False,
) -> None:
    """Start the local Kafka and PostgreSQL (migrated, with topics) and keep them up until Ctrl-C.

    For running the services yourself: prints the variables that point them at this stack (on a secured
    broker as the operator principal; each service then sets its own KAFKA_SASL_USERNAME and
    KAFKA_SASL_PASSWORD_FILE). `saga stack down` from another terminal stops it.
    """
    settings = load_settings()
    stack = LocalStack(
        settings, kafka_nodes=kafka_nodes, kafka_secure=kafka_security or settings.kafka_secure
    )
    stopping = _stop_on_sigterm()
    try:
        _start_stack(stack)
        console.print("local stack is up; point the services at it with:", style="bold")
        # The local databases' URLs carry no password (they name the stack's password file). A URL of
        # your own that has one is not printed: your shell already has it, and a masked copy would break.
        for name, value in stack.environment().items():
            if has_password(value):
                console.print(f"# {name}: as you set it ({mask_url(value)})", highlight=False, soft_wrap=True)
            else:
                console.print(f"export {name}='{value}'", highlight=False, soft_wrap=True)
        security = stack.kafka_security
        if security is not None:
            console.print(
                f"each service connects as its own principal: KAFKA_SASL_USERNAME=<service>, "
                f"KAFKA_SASL_PASSWORD_FILE={security.directory}/<service>.password",
                highlight=False,
                soft_wrap=True,
            )
        console.print("Ctrl-C or `saga stack down` stops it.")
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        console.print("stopped.")


@stack_app.command("down")
def stack_down(
    timeout: Annotated[float, typer.Option(help="seconds to wait for it to stop")] = 60.0,
) -> None:
    """Stop the local stack started by `saga stack up` or `saga run` (it stops its services too)."""
    record = load_settings().state_dir / "stack.json"
    if not record.exists():
        raise fail(f"no local stack recorded in {record}", Exit.UNAVAILABLE)
    owner = json.loads(record.read_text()).get("owner_pid")
    try:
        os.kill(int(owner), signal.SIGTERM)
    except (TypeError, ValueError, ProcessLookupError):
        record.unlink(missing_ok=True)
        console.print("the recorded stack was no longer running; its record is removed")
        return
    deadline = time.monotonic() + timeout
    while record.exists():
        if time.monotonic() > deadline:
            raise fail(f"the stack (pid {owner}) did not stop within {timeout:.0f} s", Exit.FAILED)
        time.sleep(0.2)
    console.print("stopped.")


@stack_app.command("status")
def stack_status() -> None:
    """Show the local stack recorded in the state folder, and how replicated its saga topics are.

    A topic replicated less than the cluster allows (or than SAGA_TOPIC_REPLICATION_FACTOR says), and a
    partition without a leader, are also printed as warnings on stderr.
    """
    state = load_settings().state_dir / "stack.json"
    if not state.exists():
        raise fail(f"no local stack recorded in {state}", Exit.UNAVAILABLE)
    record = json.loads(state.read_text())
    # A record written before passwords were kept out of it may still hold one: never print it.
    record["environment"] = {k: mask_url(str(v)) for k, v in record.get("environment", {}).items()}
    record["kafka_topics"] = _topics_status(operator_settings())
    console.print_json(json.dumps(record))
    warnings = list(record["kafka_topics"].get("problems", []))
    for name, topic in record["kafka_topics"].get("topics", {}).items():
        if topic["leaderless_partitions"]:
            warnings.append(f"{name} partitions {topic['leaderless_partitions']} have no leader")
    for warning in warnings:
        err.print(f"[red]warning:[/red] {escape(warning)}")


def _topics_status(settings: Settings) -> dict[str, Any]:
    """The saga topics' replication as the broker describes it, or why it could not be read."""
    if not settings.kafka_bootstrap_servers:
        return {"error": "no Kafka recorded or configured"}
    try:
        kafka = kafka_connection(settings)
    except KafkaSecurityError as exc:
        return {"error": str(exc)}
    try:
        cluster = asyncio.run(asyncio.wait_for(read_cluster_topics(kafka), 15))
    except Exception as exc:
        return {"error": f"Kafka at {kafka.describe()} did not answer ({exc.__class__.__name__})"}
    return replication_summary(cluster, settings.topic_replication_factor)


def main() -> None:
    try:
        app()
    except MissingDatabaseUrl as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(int(Exit.USAGE))
