"""What a service's views, timers and handlers share at run time (built by `common.app.create_service`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Service, Settings
from common.kafka import LazyProducer
from common.messaging.relay import OutboxRelay
from common.messaging.runner import EventRunner
from common.messaging.tables import MessagingTables
from common.messaging.unit_of_work import UnitOfWork
from common.openapi import Callout, Route
from common.services import SERVICES
from common.tracing import Tracing
from common.write_health import DatabaseWrites


@dataclass
class ServiceContext:
    """Everything a service's views, timers and handlers share at run time."""

    service: Service
    settings: Settings
    engine: AsyncEngine
    tables: MessagingTables
    relay: OutboxRelay
    runner: EventRunner
    producer: LazyProducer
    description: str  # what the service does, as its OpenAPI document says
    routes: list[Route] = field(default_factory=list)  # what its OpenAPI document describes
    callouts: list[Callout] = field(default_factory=list)  # the requests it sends out (its webhooks)
    # A service's own figures for /metrics, read when it is scraped (order's webhooks).
    metric_sources: list[Callable[[], Awaitable[list[Metric]]]] = field(default_factory=list)
    # Called after every consumer transaction that applied events (after the relay's wake, when it wrote
    # events to publish): workers that act on what a handler wrote (delivery's sweep, payment's refunds,
    # order's webhook sender) start at once instead of on their timer.
    commit_listeners: list[Callable[[], None]] = field(default_factory=list)
    # Called after a unit of work (an API call, a timer) committed, after the relay: order's webhook
    # sender, since a cancel or an expired deadline is a status change its shop is told of.
    write_listeners: list[Callable[[], None]] = field(default_factory=list)
    tracing: Tracing = field(default_factory=Tracing.off)  # one trace per saga (common/tracing.py)
    writes: DatabaseWrites = field(default_factory=DatabaseWrites)  # failing writes, for readiness

    @property
    def topic(self) -> str:
        """The one topic this service writes."""
        return SERVICES[self.service].topic

    def unit_of_work(self, *, one_statement: bool = False) -> UnitOfWork:
        """A transaction for a write outside the runner: its events reach the outbox, then the relay.
        `one_statement`: a write that is one statement, in autocommit (`UnitOfWork`)."""
        return UnitOfWork(
            self.engine,
            self.tables.outbox,
            self.topic,
            self._after_write,
            self.tracing,
            one_statement=one_statement,
        )

    def _after_write(self) -> None:
        """After a unit of work committed: the relay, then what acts on such writes (not every worker that
        acts on consumed events: payment's refunds are never due because of a checkout)."""
        self.writes.committed()
        self.relay.wake()
        for listener in self.write_listeners:
            listener()
