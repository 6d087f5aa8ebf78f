"""The webhooks' figures for /metrics: what is waiting, how old the oldest is, endpoints by state, and the
attempts this worker made. No URL and no secret: an endpoint's URL may carry the shop's own token."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncEngine

from common import pg
from common.db import reading
from order.webhooks.sender import WebhookSender

_PENDING = (
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(d.created_at)), 0)"
    " FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled"
    " WHERE d.delivered_at IS NULL"
)
_ENDPOINTS = (
    "SELECT CASE WHEN NOT enabled THEN 'disabled' WHEN failing_since IS NOT NULL THEN 'failing'"
    " ELSE 'enabled' END AS state, count(*) FROM webhook_endpoints GROUP BY 1"
)


async def webhook_metrics(engine: AsyncEngine, sender: WebhookSender) -> list[Metric]:
    async with reading(engine) as conn:
        [(pending, oldest)] = await pg.fetch_all(conn, _PENDING, ())
        states = dict(await pg.fetch_all(conn, _ENDPOINTS, ()))
    waiting = GaugeMetricFamily(
        "saga_webhook_pending", "Events waiting to be acknowledged by enabled endpoints"
    )
    waiting.add_metric([], int(pending))
    age = GaugeMetricFamily(
        "saga_webhook_oldest_pending_seconds",
        "Age of the oldest event an enabled endpoint has not acknowledged",
    )
    age.add_metric([], float(oldest))
    endpoints = GaugeMetricFamily("saga_webhook_endpoints", "Webhook endpoints by state", labels=["state"])
    for state in ("enabled", "failing", "disabled"):
        endpoints.add_metric([state], int(states.get(state, 0)))
    attempts = CounterMetricFamily(
        "saga_webhook_attempts", "Requests this worker sent to endpoints, by outcome", labels=["outcome"]
    )
    attempts.add_metric(["delivered"], sender.delivered_total)
    attempts.add_metric(["failed"], sender.attempts_total - sender.delivered_total)
    return [waiting, age, endpoints, attempts]
