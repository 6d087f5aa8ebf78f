"""Prometheus metrics, read from the runner and relay counters when scraped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

if TYPE_CHECKING:
    from common.app import ServiceContext


class _Snapshot(Collector):
    def __init__(
        self, service: str, stats: dict[str, int], published: int, pending: int, parked: int
    ) -> None:
        self._service = service
        self._stats = stats
        self._published = published
        self._pending = pending
        self._parked = parked

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "saga_events", "Consumed events by outcome", labels=["service", "outcome"]
        )
        for outcome, count in self._stats.items():
            events.add_metric([self._service, outcome], count)
        yield events
        published = CounterMetricFamily("saga_outbox_published", "Outbox rows published", labels=["service"])
        published.add_metric([self._service], self._published)
        yield published
        for name, text, value in (
            ("saga_outbox_pending", "Outbox rows not yet published", self._pending),
            ("saga_dead_letters_parked", "Dead letters waiting for an operator", self._parked),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["service"])
            gauge.add_metric([self._service], value)
            yield gauge


async def render_metrics(context: ServiceContext) -> bytes:
    dead = context.tables.dead_letters
    async with context.engine.connect() as conn:
        parked = await conn.scalar(select(func.count()).select_from(dead).where(dead.c.status == "parked"))
    registry = CollectorRegistry()
    registry.register(
        _Snapshot(
            context.service.value,
            asdict(context.runner.stats),
            context.relay.published_total,
            await context.relay.pending_count(),
            int(parked or 0),
        )
    )
    return generate_latest(registry)
