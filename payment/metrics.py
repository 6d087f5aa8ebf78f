"""Payment's own figures for /metrics: refunds not succeeded, by state (read when scraped)."""

from __future__ import annotations

from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine

from common.metrics import status_gauge
from payment import models
from payment.domain import RefundStatus

# A refund ends SUCCEEDED; PENDING is being attempted; FAILED waits for an operator's retry.
UNFINISHED = (RefundStatus.PENDING.value, RefundStatus.FAILED.value)


async def refund_metrics(engine: AsyncEngine) -> list[Metric]:
    return [
        await status_gauge(
            engine,
            models.refunds.name,
            UNFINISHED,
            "saga_refunds",
            "Refunds not succeeded yet: pending (being attempted), failed (for an operator)",
        )
    ]
