"""Prometheus metrics, read from the runner and relay counters when scraped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common import pg
from common.db import reading
from common.messaging.runner import RunnerStats

if TYPE_CHECKING:
    from common.context import ServiceContext


class _Snapshot(Collector):
    """The service's counters as they are now, in Prometheus' text format."""

    def __init__(
        self,
        service: str,
        stats: RunnerStats,
        published: int,
        pending: int,
        parked: int,
        leading: bool,
        oldest_pending: float,
    ) -> None:
        self._service = service
        self._stats = stats
        self._published = published
        self._pending = pending
        self._parked = parked
        self._leading = leading
        self._oldest_pending = oldest_pending

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "saga_events", "Consumed events by outcome", labels=["service", "outcome"]
        )
        for outcome, count in self._stats.outcomes().items():
            events.add_metric([self._service, outcome], count)
        yield events
        for name, text, total in (
            ("saga_outbox_published", "Outbox rows published", self._published),
            ("saga_transient_retries", "Database failures retried in place", self._stats.transient_retries),
            (
                "saga_consumer_batches",
                "Transactions that applied several events at once",
                self._stats.batches,
            ),
            (
                "saga_consumer_batched_events",
                "Events applied in those transactions",
                self._stats.batched_events,
            ),
        ):
            counter = CounterMetricFamily(name, text, labels=["service"])
            counter.add_metric([self._service], total)
            yield counter
        for name, text, value in (
            ("saga_outbox_pending", "Outbox rows not yet published", self._pending),
            (
                "saga_outbox_oldest_pending_seconds",
                "How long the oldest unpublished outbox row has waited (0: none waits)",
                self._oldest_pending,
            ),
            ("saga_dead_letters_parked", "Dead letters waiting for an operator", self._parked),
            (
                "saga_outbox_relay_leading",
                "1 if this worker's relay publishes the service's outbox (one worker of a service leads)",
                int(self._leading),
            ),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["service"])
            gauge.add_metric([self._service], value)
            yield gauge


class _Listed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


def render_snapshot(
    service: str,
    stats: RunnerStats,
    *,
    published: int,
    pending: int,
    parked: int,
    leading: bool,
    oldest_pending: float = 0.0,
    more: list[Metric] | None = None,
) -> bytes:
    registry = CollectorRegistry()
    registry.register(_Snapshot(service, stats, published, pending, parked, leading, oldest_pending))
    if more:
        registry.register(_Listed(more))
    return generate_latest(registry)


async def render_metrics(context: ServiceContext) -> bytes:
    dead = context.tables.dead_letters
    async with reading(context.engine) as conn:
        parked = await conn.scalar(select(func.count()).select_from(dead).where(dead.c.status == "parked"))
    pending, oldest_pending = await context.relay.backlog()
    return render_snapshot(
        context.service.value,
        context.runner.stats,
        published=context.relay.published_total,
        pending=pending,
        parked=int(parked or 0),
        leading=context.relay.leading,
        oldest_pending=oldest_pending,
        more=[metric for source in context.metric_sources for metric in await source()],
    )


async def status_gauge(
    engine: AsyncEngine, table: str, statuses: Sequence[str], name: str, documentation: str
) -> GaugeMetricFamily:
    """How many rows of `table` are in each of `statuses`, as a gauge labelled `status` (lower case), with
    every status a series, 0 included, so an alert on one never sees it vanish. A count per status
    through an index on `status` when the table has one."""
    async with reading(engine) as conn:
        rows = await pg.fetch_all(
            conn,
            f"SELECT status, count(*) FROM {table} WHERE status = ANY(%s::text[]) GROUP BY status",
            (list(statuses),),
        )
    counts = {status: int(count) for status, count in rows}
    gauge = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in statuses:
        gauge.add_metric([status.lower()], counts.get(status, 0))
    return gauge
