"""The order service's webhooks wired in: the `/webhooks` routes, the sender on a pool of its own, its
housekeeping timers and its figures for /metrics (built by `order.app.create_app`)."""

from __future__ import annotations

from datetime import timedelta

import faust
from prometheus_client.core import Metric

from common.config import Service, Settings
from common.context import ServiceContext
from common.db import create_engine
from common.scheduling import periodic
from common.web import provide, serve
from order.webhooks import api as webhooks_api
from order.webhooks.metrics import webhook_metrics
from order.webhooks.policy import RetryPolicy
from order.webhooks.sender import SenderSettings, WebhookSender
from order.webhooks.store import forget_before


def attach_webhooks(app: faust.App, settings: Settings, context: ServiceContext) -> None:
    """The `/webhooks` routes, and the sender on a pool of its own: however its receivers behave, it
        never takes a connection the saga needs. It is woken after every commit of the service (its consumer's
    and its units of work's)."""
    sender_engine = create_engine(context.settings.database_url(Service.ORDER) or "", pool_size=2)
    sender = WebhookSender(
        sender_engine,
        SenderSettings(
            concurrency=settings.webhook_concurrency,
            # No endpoint takes more than half the sender (a failing one takes one request at a time).
            per_endpoint=max(1, settings.webhook_concurrency // 2),
            timeout=timedelta(seconds=settings.webhook_timeout_seconds),
            policy=RetryPolicy(
                cap_seconds=settings.webhook_retry_cap_seconds,
                disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
            ),
            allow_local=settings.webhook_allow_local_urls,
        ),
    )
    context.commit_listeners.append(sender.wake)
    context.write_listeners.append(sender.wake)

    async def figures() -> list[Metric]:
        return await webhook_metrics(context.engine, sender)

    context.metric_sources.append(figures)
    provide(
        app,
        webhooks_api.WebhookDependencies(
            context.engine, settings.webhook_allow_local_urls, sender.endpoints_changed
        ),
    )
    serve(app, context.routes, webhooks_api.blueprint)
    context.callouts.extend(webhooks_api.CALLOUTS)

    @app.task
    async def send_webhooks() -> None:
        try:
            await sender.run_forever()
        finally:
            await sender_engine.dispose()

    periodic(app, 5.0, sender.housekeep)
    retention = timedelta(days=settings.webhook_retention_days)

    async def forget_old_webhook_records() -> None:
        async with sender_engine.begin() as conn:
            await forget_before(conn, retention)

    periodic(app, 3600.0, forget_old_webhook_records)
