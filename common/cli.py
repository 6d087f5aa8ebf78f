"""The `saga` command: run the platform locally, migrate databases, load stock, inspect the local stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from common import migrations
from common.config import Service, Settings, database_env_var, load_settings
from common.infra.stack import LocalStack
from common.kafka import ensure_topics
from common.supervisor import ServiceProcess

app = typer.Typer(help="Operate the order/payment/delivery saga platform.", no_args_is_help=True)
stack_app = typer.Typer(help="The local Kafka and PostgreSQL.", no_args_is_help=True)
inventory_app = typer.Typer(help="Delivery's stock.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(inventory_app, name="inventory")
console = Console()
err = Console(stderr=True)

DEMO_STOCK = Path(__file__).resolve().parent / "resources" / "demo-stock.json"

# Exit codes scripts can rely on.
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_FAILED = 4


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@app.command()
def migrate(
    service: Annotated[Service | None, typer.Argument(help="one service; all three if omitted")] = None,
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="downgrade to --revision (default base)")] = False,
) -> None:
    """Bring each service's database to the latest schema (or down, with --down)."""
    settings = load_settings()
    for target in [service] if service else list(Service):
        url = settings.database_url(target)
        if not url:
            raise _fail(
                f"{database_env_var(target)} is not set (or use `saga run`, which starts a database)",
                EXIT_USAGE,
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
) -> None:
    """Run the platform: local Kafka and PostgreSQL (unless configured), migrations, the three services.

    Ctrl-C stops everything in order.
    """

    settings = load_settings()
    stack = LocalStack(settings, kafka_nodes=kafka_nodes)
    services: list[ServiceProcess] = []
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        with console.status("starting Kafka and PostgreSQL…"):
            stack.start()
        env = {**os.environ, **stack.environment()}
        if auto_progress > 0 and "DELIVERY_AUTO_PROGRESS_SECONDS" not in os.environ:
            env["DELIVERY_AUTO_PROGRESS_SECONDS"] = str(auto_progress)
        running = Settings.model_validate(env)
        with console.status("migrating the three databases…"):
            for service in Service:
                url = running.database_url(service)
                assert url is not None
                migrations.upgrade(service, url)
        asyncio.run(ensure_topics(running))
        logs = settings.state_dir / "logs"
        for service in Service:
            process = ServiceProcess(
                service, env=env, log_path=logs / f"{service.value}.log", base_url=running.base_url(service)
            )
            process.start()
            services.append(process)
        with console.status("waiting for the services to be ready…"):
            for process in services:
                process.wait_ready()
        if seed:
            _seed_demo_stock(running.base_url(Service.DELIVERY))
        _print_endpoints(running, logs)
        restarts: list[float] = []
        while not stopping:
            for process in services:
                if process.running:
                    continue
                # A crashed worker is restarted (Kafka redelivers what it had not committed); a crash loop
                # is not hidden behind restarts: five within a minute stop the platform with the log.
                restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
                err.print(f"[yellow]{process.service.value} exited; restarting[/yellow]. Log tail:")
                err.print(process.log_tail(10))
                if len(restarts) >= 5:
                    raise _fail("services keep crashing; see the logs above", EXIT_FAILED)
                process.start()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        for process in reversed(services):
            process.stop()
        stack.stop()
        console.print("stopped.")


def _seed_demo_stock(delivery_url: str) -> None:
    existing = httpx.get(f"{delivery_url}/inventory", timeout=5).json()["items"]
    if existing:
        return
    response = httpx.post(f"{delivery_url}/inventory", content=DEMO_STOCK.read_bytes(), timeout=10)
    response.raise_for_status()


def _print_endpoints(settings: Settings, logs: Path) -> None:
    table = Table(title="saga platform is running", show_header=True)
    table.add_column("what")
    table.add_column("where")
    table.add_row("Kafka", settings.kafka_bootstrap_servers or "")
    for service in Service:
        table.add_row(f"{service.value} API", f"{settings.base_url(service)}  (openapi: /openapi.json)")
        table.add_row(f"{service.value} database", settings.database_url(service) or "")
    table.add_row("logs", str(logs))
    console.print(table)
    payment, order = settings.base_url(Service.PAYMENT), settings.base_url(Service.ORDER)
    body = (
        '{"customer_id": "c-1", "currency": "EUR", "payment_method": "tok_visa", '
        '"lines": [{"sku": "BOOK-1", "quantity": 1, "unit_price_minor": 1999}], '
        '"shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Berlin", '
        '"postal_code": "10115", "country": "DE"}}'
    )
    console.print("\nPlace an order:", style="bold")
    console.print(
        f"  curl -si -X POST {payment}/checkout -H 'Idempotency-Key: demo-1' "
        f"-H 'Content-Type: application/json' -d '{body}'",
        soft_wrap=True,
    )
    console.print(f"  curl -s {order}/orders/<order_id>   # status and timeline", soft_wrap=True)
    console.print("\nCtrl-C stops everything.")


@inventory_app.command("load")
def inventory_load(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help='JSON: {"items": [{"sku", "on_hand"}]}')
    ],
) -> None:
    """Load a stock file into the delivery service (sets each SKU's units on hand)."""
    url = load_settings().base_url(Service.DELIVERY)
    try:
        response = httpx.post(f"{url}/inventory", content=path.read_bytes(), timeout=30)
    except httpx.HTTPError as exc:
        raise _fail(f"delivery service unreachable at {url}: {exc}", EXIT_UNAVAILABLE) from exc
    if response.status_code != 200:
        raise _fail(f"delivery refused the file ({response.status_code}): {response.text}")
    console.print(f"loaded {len(response.json()['items'])} SKUs")


@stack_app.command("status")
def stack_status() -> None:
    """Show the local stack recorded in the state folder."""
    state = load_settings().state_dir / "stack.json"
    if not state.exists():
        raise _fail(f"no local stack recorded in {state}", EXIT_UNAVAILABLE)
    console.print_json(json.dumps(json.loads(state.read_text())))


def main() -> None:
    try:
        app()
    except migrations.MissingDatabaseUrl as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_USAGE)
