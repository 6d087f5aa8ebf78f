"""Order's own figures for /metrics: the sagas in flight, by status (read when scraped)."""

from __future__ import annotations

from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine

from common.metrics import status_gauge
from order import models
from order.saga import TERMINAL_STATUSES, OrderStatus

# Every status a saga can still leave; REFUND_FAILED waits for an operator.
IN_FLIGHT = tuple(status.value for status in OrderStatus if status not in TERMINAL_STATUSES)


async def saga_metrics(engine: AsyncEngine) -> list[Metric]:
    # ix_orders_status_updated: an index range per status, however many orders have finished.
    return [
        await status_gauge(
            engine,
            models.orders.name,
            IN_FLIGHT,
            "saga_orders_in_flight",
            "Sagas not finished yet, by status (refund_failed waits for an operator)",
        )
    ]
