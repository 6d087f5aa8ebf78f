"""Payment's HTTP API: checkout, payment status, and the operator's refund retry."""

from __future__ import annotations

from typing import Any

import faust
from sqlalchemy import select

from common.app import ServiceContext
from common.config import Service
from common.db import reading
from common.openapi import Route
from common.web import ApiError, JsonView, not_found, parse_body
from payment import models
from payment.checkout import CheckoutRequest, IdempotencyConflict, OrderIdTaken, checkout
from payment.gateway import PaymentGateway
from payment.refunds import retry_failed_refund

ROUTES = [
    Route(
        "POST",
        "/checkout",
        "Charge the customer and start the order saga",
        request=CheckoutRequest,
        responses={
            202: "accepted; poll Location",
            400: "bad request",
            409: "key reused or order id taken",
            422: "invalid",
        },
        headers=("Idempotency-Key",),
    ),
    Route(
        "GET",
        "/payments/{order_id}",
        "The payment and refund of an order",
        responses={200: "OK", 404: "unknown"},
    ),
    Route(
        "POST",
        "/payments/{order_id}/refund/retry",
        "Operator: retry a refund that failed for good",
        responses={202: "queued again", 404: "unknown", 409: "no failed refund"},
    ),
]


def attach_api(app: faust.App, context: ServiceContext, gateway: PaymentGateway) -> None:
    engine = context.engine
    order_url = context.settings.base_url(Service.ORDER)
    context.routes.extend(ROUTES)

    @app.page("/checkout")
    class Checkout(JsonView):
        async def post(self, request: Any) -> Any:
            key = request.headers.get("Idempotency-Key", "").strip()
            if not key:
                raise ApiError(400, "missing_idempotency_key", "the Idempotency-Key header is required")
            if len(key) > 200:
                raise ApiError(
                    400, "bad_idempotency_key", "the Idempotency-Key header is longer than 200 characters"
                )
            body = await parse_body(request, CheckoutRequest)
            try:
                answer, wrote_events = await checkout(
                    engine, gateway, idempotency_key=key, request=body, order_url=order_url
                )
            except IdempotencyConflict as exc:
                raise ApiError(409, "idempotency_key_reused", str(exc)) from exc
            except OrderIdTaken as exc:
                raise ApiError(409, "order_id_taken", str(exc)) from exc
            if wrote_events:
                context.relay.wake()
            return self.json(
                answer.body, status=answer.status, headers={"Location": answer.body["order_url"]}
            )

    @app.page("/payments/{order_id}")
    class Payment(JsonView):
        async def get(self, request: Any, order_id: str) -> Any:
            async with reading(engine) as conn:
                payment = (
                    await conn.execute(select(models.payments).where(models.payments.c.order_id == order_id))
                ).first()
                if payment is None:
                    raise not_found(f"payment for order {order_id}")
                refund = (
                    await conn.execute(
                        select(models.refunds).where(models.refunds.c.payment_id == payment.payment_id)
                    )
                ).first()
            return self.json(_describe(payment, refund))

    @app.page("/payments/{order_id}/refund/retry")
    class RetryRefund(JsonView):
        async def post(self, request: Any, order_id: str) -> Any:
            refund_id = await retry_failed_refund(engine, order_id)
            if refund_id is None:
                raise ApiError(409, "no_failed_refund", f"order {order_id} has no refund in state FAILED")
            return self.json(
                {"order_id": order_id, "refund_id": str(refund_id), "status": "PENDING"}, status=202
            )


def _describe(payment: Any, refund: Any) -> dict[str, Any]:
    return {
        "payment_id": str(payment.payment_id),
        "order_id": payment.order_id,
        "customer_id": payment.customer_id,
        "status": payment.status,
        "amount": {"amount_minor": payment.amount_minor, "currency": payment.currency},
        "lines": payment.lines,
        "failure_reason": payment.failure_reason,
        "gateway_reference": payment.gateway_reference,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
        "refund": None
        if refund is None
        else {
            "refund_id": str(refund.refund_id),
            "status": refund.status,
            "reason": refund.reason,
            "amount": {"amount_minor": refund.amount_minor, "currency": refund.currency},
            "attempts": refund.attempts,
            "last_error": refund.last_error,
            "updated_at": refund.updated_at.isoformat(),
        },
    }
