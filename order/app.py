"""The order service: wiring of its agent, deadline sweep and HTTP API."""

from __future__ import annotations

from datetime import timedelta

import faust

from common.app import create_service
from common.config import Service, Settings, load_settings
from common.scheduling import periodic
from common.web import provide, serve
from order import api, models
from order.deadlines import expire_deadlines
from order.handlers import build_handlers
from order.metrics import SagaDurations, saga_metrics
from order.payment_lookup import HttpPaymentLookup
from order.webhooks.wiring import attach_webhooks


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or load_settings()
    durations = SagaDurations()
    consumer = build_handlers(timedelta(seconds=settings.delivery_deadline_seconds), durations)
    app, context = create_service(
        Service.ORDER,
        settings,
        tables=models.messaging,
        handlers=consumer.handlers,
        batch_handler=consumer.batch_handler,
        claim_locks=consumer.claim_locks,
        description=(
            "Keeps each order's saga state and timeline; cancels on stock-out, and asks delivery to cancel"
            " for a customer or an expired deadline (the payment is refunded once delivery confirms)."
        ),
    )

    async def sweep_deadlines() -> None:
        await expire_deadlines(context.unit_of_work)

    # Deadlines expire within an eighth of their length (at most 5 s late): a sweep is a transaction, and
    # an idle platform's CPU is mostly such timers (it swept every second).
    periodic(app, min(5.0, settings.delivery_deadline_seconds / 8), sweep_deadlines)
    payments = HttpPaymentLookup(settings.payment_lookup_url(), settings.payment_lookup_api_key())
    provide(app, api.OrderDependencies(context.engine, context.unit_of_work, payments))
    serve(app, context.routes, api.blueprint)
    attach_webhooks(app, settings, context)
    context.metric_sources.append(lambda: saga_metrics(context.engine, durations))
    return app
