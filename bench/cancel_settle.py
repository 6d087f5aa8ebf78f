"""`python -m bench.cancel_settle`: how long a customer's cancel takes to settle at low load, step by step.

A cancel goes through delivery (shipping is the pivot): the order asks (OrderCancellationRequested),
delivery releases and confirms (CancellationConfirmed), the order cancels (OrderCancelled), payment
refunds (PaymentRefunded). This measures each step from the moment the shop sends the cancel, timed by
the events on the topics (no polling), and records what the shop sees: the cancel's answer and the
order's status right after it. Two moments to cancel:

- `scheduled`: once delivery has reserved (DeliveryScheduled seen), before the parcel ships;
- `at_once`: right after the checkout's `202`, usually before the order service has recorded the order
  (the order answers ACCEPTED, the cancel is kept until the order exists).

The platform runs as `make run` runs it: auto-progress after 2 s, so a cancel sent in time wins.
Writes `bench/results/cancel.json` and `cancel.md`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from bench.loadgen import events_from_now
from bench.stats import percentile
from common.auth import Scope
from common.config import Service, Settings, load_settings
from common.service_apis import bearer
from common.tenancy import order_id_of
from saga_tools.local_stack.ports import free_port
from saga_tools.local_stack.stack import LocalStack
from saga_tools.supervisor import running_services

console = Console()
app = typer.Typer(add_completion=False)
RESULTS = Path(__file__).resolve().parent / "results"
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
# The events of a cancel, in the order they happen, and the topic each is read from.
MILESTONES = ("OrderCancellationRequested", "CancellationConfirmed", "OrderCancelled", "PaymentRefunded")
WATCHED = ("payment", "order", "delivery")
SCENARIOS = ("scheduled", "at_once")


@dataclass
class Seen:
    """When each order's events were seen (monotonic seconds), and a wakeup per (order, event type)."""

    at: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    signals: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)

    def signal(self, order_id: str, event_type: str) -> asyncio.Event:
        return self.signals.setdefault((order_id, event_type), asyncio.Event())

    def record(self, order_id: str, event_type: str, now: float) -> None:
        self.at[order_id].setdefault(event_type, now)
        self.signal(order_id, event_type).set()


async def watch(bootstrap: str, seen: Seen, ready: asyncio.Event) -> None:
    async for now, event in events_from_now(bootstrap, WATCHED, ready):
        seen.record(order_id_of(event["order_id"]), event["type"], now)  # one shop: its own ids


@dataclass
class CancelRun:
    scenario: str
    order_id: str
    sent: float
    answered_ms: float
    answer: dict[str, Any]
    status_after: str
    cancellation_after: str | None


async def one_cancel(http: httpx.AsyncClient, urls: Settings, scenario: str, seen: Seen) -> CancelRun:
    body = {
        "customer_id": "bench",
        "currency": "EUR",
        "payment_method": "tok_visa",
        "lines": [{"sku": "CANCEL-PLENTY", "quantity": 1, "unit_price_minor": 999}],
        "shipping_address": ADDRESS,
    }
    checkout = await http.post(
        f"{urls.base_url(Service.PAYMENT)}/checkout", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    checkout.raise_for_status()
    order_id = checkout.json()["order_id"]
    if scenario == "scheduled":
        await asyncio.wait_for(seen.signal(order_id, "DeliveryScheduled").wait(), 30)
    sent = time.monotonic()
    answer = await http.post(f"{urls.base_url(Service.ORDER)}/orders/{order_id}/cancel")
    answered = time.monotonic()
    order = (await http.get(f"{urls.base_url(Service.ORDER)}/orders/{order_id}")).json()
    cancellation = order.get("cancellation") or {}
    return CancelRun(
        scenario,
        order_id,
        sent,
        (answered - sent) * 1000,
        {"status_code": answer.status_code, **answer.json()},
        order["status"],
        cancellation.get("status"),
    )


async def measure(
    urls: Settings, bootstrap: str, per_scenario: int, interval: float, shop_key: str
) -> list[dict[str, Any]]:
    seen, ready = Seen(), asyncio.Event()
    watcher = asyncio.create_task(watch(bootstrap, seen, ready))
    await ready.wait()
    runs: list[CancelRun] = []
    async with httpx.AsyncClient(timeout=30, headers=bearer(shop_key)) as http:
        for scenario in SCENARIOS:
            tasks = []
            for _ in range(per_scenario):
                tasks.append(asyncio.create_task(one_cancel(http, urls, scenario, seen)))
                await asyncio.sleep(interval)
            runs.extend(await asyncio.gather(*tasks))
    # A cancel delivery refused (the parcel left first) never refunds: wait a minute at most.
    refunds = [asyncio.create_task(seen.signal(run.order_id, "PaymentRefunded").wait()) for run in runs]
    _, unrefunded = await asyncio.wait(refunds, timeout=60)
    for waiting in [*unrefunded, watcher]:
        waiting.cancel()
    return [summarise(scenario, [r for r in runs if r.scenario == scenario], seen) for scenario in SCENARIOS]


def summarise(scenario: str, runs: list[CancelRun], seen: Seen) -> dict[str, Any]:
    """Per milestone, milliseconds from the cancel's sending: p50, p95, max; and what the shop saw."""
    steps: dict[str, dict[str, float]] = {"answer (202)": _figures([r.answered_ms for r in runs])}
    for milestone in MILESTONES:
        reached = [
            (seen.at[r.order_id][milestone] - r.sent) * 1000 for r in runs if milestone in seen.at[r.order_id]
        ]
        steps[milestone] = _figures(reached)
    return {
        "scenario": scenario,
        "cancels": len(runs),
        "refunded": sum("PaymentRefunded" in seen.at[r.order_id] for r in runs),
        "steps_ms": steps,
        "answers": dict(Counter(f"{r.answer['status_code']} {r.answer.get('status')}" for r in runs)),
        "status_right_after": dict(Counter(f"{r.status_after} ({r.cancellation_after})" for r in runs)),
    }


def _figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 0.50), 1),
        "p95": round(percentile(ordered, 0.95), 1),
        "max": round(ordered[-1], 1),
    }


def write_report(results: list[dict[str, Any]], out: Path) -> None:
    lines = ["| cancel sent | step | n | p50 ms | p95 ms | max ms |", "|---|---|---:|---:|---:|---:|"]
    for result in results:
        for step, figures in result["steps_ms"].items():
            if figures["n"]:
                row = f"| {result['scenario']} | {step} | {figures['n']} |"
                lines.append(f"{row} {figures['p50']} | {figures['p95']} | {figures['max']} |")
    lines.append("")
    for result in results:
        lines.append(
            f"- {result['scenario']}: {result['refunded']}/{result['cancels']} refunded; answers"
            f" {result['answers']}; the order right after the answer: {result['status_right_after']}"
        )
    (out / "cancel.json").write_text(json.dumps(results, indent=2))
    (out / "cancel.md").write_text("\n".join(lines) + "\n")


@app.command()
def main(
    per_scenario: Annotated[int, typer.Option(help="cancels per scenario")] = 40,
    interval: Annotated[float, typer.Option(help="seconds between two sagas (low load: 0.5)")] = 0.5,
    out: Annotated[Path, typer.Option(help="where results go")] = RESULTS,
) -> None:
    """Measure how long a cancel takes to settle, step by step, on a private local stack."""
    state = load_settings().state_dir.resolve() / "bench-cancel"
    shutil.rmtree(state, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(load_settings(), state_dir=state)
    with console.status("starting Kafka and PostgreSQL…"):
        stack.start()
    try:
        env = {
            **os.environ,
            **stack.environment(),
            "SAGA_STATE_DIR": str(state),
            "DELIVERY_AUTO_PROGRESS_SECONDS": "2",  # as `make run`
            "SAGA_LOG_LEVEL": "warning",
            **{f"{service.value.upper()}_HTTP_PORT": str(free_port()) for service in Service},
        }
        urls = Settings.model_validate(env)
        with running_services(env, state):
            delivery = urls.base_url(Service.DELIVERY)
            keys = stack.demo_keys()
            httpx.put(
                f"{delivery}/inventory/CANCEL-PLENTY",
                json={"on_hand": 1_000_000},
                headers=bearer(keys[Scope.OPERATOR]),
            ).raise_for_status()
            results = asyncio.run(
                measure(urls, stack.kafka_bootstrap_servers, per_scenario, interval, keys[Scope.SHOP])
            )
    finally:
        stack.stop()
    write_report(results, out)
    console.print((out / "cancel.md").read_text())


if __name__ == "__main__":
    app()
