"""Order's own figures for /metrics: the sagas in flight, by status (read when scraped), and how long the
finished ones took, by outcome (observed as each finishes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from prometheus_client import Histogram
from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine

from common.database_clock import DATABASE_CLOCK
from common.metrics import status_gauge
from order import models
from order.saga import TERMINAL_STATUSES, OrderStatus
from order.saga_batch import OrderRow

# Every status a saga can still leave; REFUND_FAILED waits for an operator.
IN_FLIGHT = tuple(status.value for status in OrderStatus if status not in TERMINAL_STATUSES)
# How a saga ends, as the duration's `outcome` label: its final status, lower case.
OUTCOMES = tuple(sorted(status.value.lower() for status in TERMINAL_STATUSES))
# From a rejected payment (tens of milliseconds) to a parcel a carrier delivers days later.
DURATION_BUCKETS = (
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
    6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0,
)  # fmt: skip


class SagaDurations:
    """`saga_duration_seconds{outcome}`: from the checkout (payment's answer, the creating event's
    `occurred_at`) to the order's final status, observed once the transaction that reached it has
    committed. Every outcome is a series from the start, so a rate over one never vanishes.

    The two ends are read from two services' copies of their databases' clocks (payment's and order's,
    common/database_clock.py), so a host's wall clock that jumps is not in the figure; two database
    servers' skew is, and a negative duration counts as 0."""

    def __init__(self, clock: Callable[[], datetime] = DATABASE_CLOCK.now) -> None:
        self._clock = clock
        # Its own registry (none): two apps in one process (the tests) must not share one histogram.
        self._histogram = Histogram(
            "saga_duration_seconds",
            "Sagas finished, by outcome: seconds from the checkout to the final status",
            labelnames=["outcome"],
            buckets=DURATION_BUCKETS,
            registry=None,
        )
        for outcome in OUTCOMES:
            self._histogram.labels(outcome)

    def observe(self, finished: Sequence[OrderRow]) -> None:
        now = self._clock()
        for order in finished:
            if order.checkout_at is None:  # recorded before orders kept their checkout's time
                continue
            seconds = max(0.0, (now - order.checkout_at).total_seconds())
            self._histogram.labels(order.status.value.lower()).observe(seconds)

    def collect(self) -> list[Metric]:
        return list(self._histogram.collect())


async def saga_metrics(engine: AsyncEngine, durations: SagaDurations) -> list[Metric]:
    # ix_orders_status_updated: an index range per status, however many orders have finished.
    in_flight = await status_gauge(
        engine,
        models.orders.name,
        IN_FLIGHT,
        "saga_orders_in_flight",
        "Sagas not finished yet, by status (refund_failed waits for an operator)",
    )
    return [in_flight, *durations.collect()]
