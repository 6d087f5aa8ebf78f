"""The payment service: wiring of its agent, refund worker and HTTP API."""

from __future__ import annotations

from datetime import timedelta

import faust

from common.app import create_service
from common.config import Service, Settings, load_settings
from common.scheduling import on_wake, periodic
from common.web import provide, serve
from payment import api, models
from payment.checkout import recover_pending
from payment.gateway import PaymentGateway, SimulatorGateway
from payment.handlers import HANDLERS
from payment.http_gateway import HttpGateway
from payment.metrics import refund_metrics
from payment.payment_store import SqlPaymentStore
from payment.refund_store import SqlRefundStore
from payment.refunds import RefundWorker


def build_gateway(settings: Settings) -> PaymentGateway:
    if settings.payment_gateway == "simulator":
        return SimulatorGateway(timeout_seconds=settings.gateway_timeout_seconds)
    if settings.payment_gateway == "http":
        if not settings.payment_gateway_url:
            raise ValueError("PAYMENT_GATEWAY=http needs PAYMENT_GATEWAY_URL")
        return HttpGateway(settings.payment_gateway_url, timeout_seconds=settings.gateway_timeout_seconds)
    raise ValueError(f"unknown PAYMENT_GATEWAY {settings.payment_gateway!r} (supported: simulator, http)")


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or load_settings()
    gateway = build_gateway(settings)
    app, context = create_service(
        Service.PAYMENT,
        settings,
        tables=models.messaging,
        handlers=HANDLERS,
        description="Charges customers once per Idempotency-Key and refunds cancelled orders exactly once.",
    )
    store = SqlPaymentStore(context.engine, lambda: context.unit_of_work(one_statement=True))
    refund_store = SqlRefundStore(context.engine, context.unit_of_work)
    refunds = RefundWorker(
        store=refund_store,
        gateway=gateway,
        max_attempts=settings.refund_max_attempts,
        lease=timedelta(seconds=settings.refund_lease_seconds),
        tracing=context.tracing,
    )
    # Woken after each consumer commit (a cancelled order's refund row is due at once) and when a retry
    # it scheduled comes due; every second for the rest (another worker's retries, an expired lease, an
    # operator's retry). It polled every 250 ms: four transactions a second on an idle platform.
    wake_refunds = on_wake(app, 1.0, refunds.run_due)
    refunds.wake = wake_refunds
    context.commit_listeners.append(wake_refunds)
    context.metric_sources.append(lambda: refund_metrics(context.engine))

    async def recover_interrupted_checkouts() -> None:
        await recover_pending(
            store,
            gateway,
            older_than=timedelta(seconds=settings.checkout_recovery_seconds),
            order_url=settings.base_url(Service.ORDER),
        )

    periodic(app, 2.0, recover_interrupted_checkouts)
    provide(
        app,
        api.PaymentDependencies(
            context.engine, gateway, store, refund_store, settings.base_url(Service.ORDER)
        ),
    )
    serve(app, context.routes, api.blueprint)
    return app
