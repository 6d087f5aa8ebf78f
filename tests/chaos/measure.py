"""What a fault test measures besides the invariants: when each saga finished by the database's clock
(the one clock no service's fault moves), p50/max of a set of durations, and a service's metrics as an
operator scrapes them."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import httpx
import psycopg

from common.config import Service
from common.tenancy import order_id_of
from order.saga import TERMINAL_STATUSES
from saga_tools.ops.diff import TableDiff
from saga_tools.ops.order_rebuild import rebuild_order
from tests.chaos.harness import ChaosStack
from tests.keys import suite_headers

_TERMINAL = [status.value for status in TERMINAL_STATUSES]


def _order_database(chaos: ChaosStack) -> str:
    return chaos.database_urls["order"].replace("postgresql+psycopg://", "postgresql://")


def database_offset(chaos: ChaosStack) -> float:
    """The database's clock minus this process's monotonic clock, in seconds: added to a monotonic
    instant of the test, it gives that instant on the database's clock."""
    with psycopg.connect(_order_database(chaos)) as conn:
        before = time.monotonic()
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        after = time.monotonic()
    assert row is not None
    return float(row[0]) - (before + after) / 2


def finish_times(chaos: ChaosStack) -> dict[str, float]:
    """When each finished saga reached its final status (the order's last update, on the database's
    clock, epoch seconds), by the order id the shop knows."""
    with psycopg.connect(_order_database(chaos)) as conn:
        rows = conn.execute(
            "SELECT order_id, extract(epoch FROM updated_at)::float8 FROM orders WHERE status = ANY(%s)",
            (_TERMINAL,),
        ).fetchall()
    return {order_id_of(saga): float(at) for saga, at in rows}


@dataclass(frozen=True)
class Spread:
    """How many durations, their median and their maximum, in seconds."""

    count: int
    p50: float
    max: float

    def __str__(self) -> str:
        if not self.count:
            return "none"
        return f"p50 {self.p50:.1f} s, max {self.max:.1f} s (n={self.count})"


def spread(durations: Iterable[float]) -> Spread:
    values = sorted(durations)
    if not values:
        return Spread(0, 0.0, 0.0)
    return Spread(len(values), statistics.median(values), values[-1])


def metrics(chaos: ChaosStack, service: Service, *names: str) -> dict[str, float]:
    """The named series of a service's /metrics (summed over labels), as an operator scrapes them."""
    answer = httpx.get(f"{chaos.url(service)}/metrics", headers=suite_headers(), timeout=5)
    answer.raise_for_status()
    found = dict.fromkeys(names, 0.0)
    for line in answer.text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in found:
            found[name] += float(line.rsplit(" ", 1)[1])
    return found


def rebuild_differences(chaos: ChaosStack) -> TableDiff:
    """How the orders rebuilt from the topics (`saga rebuild order`, dry run, into a scratch database)
    differ from the live ones."""
    postgres = chaos.stack.postgres
    assert postgres is not None
    with psycopg.connect(postgres.admin_conninfo(), autocommit=True) as admin:
        admin.execute('CREATE DATABASE order_rebuild OWNER "order"')
    target = chaos.database_urls["order"].replace("@/order?", "@/order_rebuild?")
    deadline = timedelta(seconds=chaos.settings.delivery_deadline_seconds)
    report = asyncio.run(
        rebuild_order(chaos.bootstrap, target, chaos.database_urls["order"], deadline=deadline, dry_run=True)
    )
    return report.diff
