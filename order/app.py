"""The order service: wiring of its agent, deadline sweep and HTTP API."""

from __future__ import annotations

from datetime import timedelta

import faust

from common.app import create_service
from common.config import Service, Settings, load_settings
from common.context import ServiceContext
from common.db import create_engine
from common.kafka import CONSUMED_TOPICS
from common.scheduling import periodic
from common.web import provide, serve
from order import api, models
from order.deadlines import expire_deadlines
from order.handlers import build_handlers
from order.payment_lookup import HttpPaymentLookup
from order.webhooks import api as webhooks_api
from order.webhooks.policy import RetryPolicy
from order.webhooks.sender import SenderSettings, WebhookSender
from order.webhooks.store import forget_before


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or load_settings()
    handlers, batch_handler = build_handlers(timedelta(seconds=settings.delivery_deadline_seconds))
    app, context = create_service(
        Service.ORDER,
        settings,
        tables=models.messaging,
        consumes=CONSUMED_TOPICS[Service.ORDER],
        handlers=handlers,
        batch_handler=batch_handler,
        description=(
            "Keeps each order's saga state and timeline; cancels on stock-out, and asks delivery to cancel"
            " for a customer or an expired deadline (the payment is refunded once delivery confirms)."
        ),
    )

    async def sweep_deadlines() -> None:
        await expire_deadlines(context.unit_of_work)

    periodic(app, min(1.0, settings.delivery_deadline_seconds / 4), sweep_deadlines)
    payments = HttpPaymentLookup(settings.payment_lookup_url(), settings.payment_lookup_api_key())
    provide(app, api.OrderDependencies(context.engine, context.unit_of_work, payments))
    serve(app, context.routes, api.blueprint)
    _attach_webhooks(app, settings, context)
    return app


def _attach_webhooks(app: faust.App, settings: Settings, context: ServiceContext) -> None:
    """The `/webhooks` routes, and the sender on a pool of its own: however its receivers behave, it
    never takes a connection the saga needs. It is woken after every commit of the service."""
    sender_engine = create_engine(context.settings.database_url(Service.ORDER) or "", pool_size=2)
    sender = WebhookSender(
        sender_engine,
        SenderSettings(
            concurrency=settings.webhook_concurrency,
            timeout=timedelta(seconds=settings.webhook_timeout_seconds),
            policy=RetryPolicy(
                cap_seconds=settings.webhook_retry_cap_seconds,
                disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
            ),
            allow_local=settings.webhook_allow_local_urls,
        ),
    )
    context.commit_listeners.append(sender.wake)
    provide(app, webhooks_api.WebhookDependencies(context.engine, settings.webhook_allow_local_urls))
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
