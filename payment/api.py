"""Payment's HTTP API: checkout, payment status, and the operator's refund retry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from faust.web import Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from common.access import OPERATOR, PAYMENT_READ, SHOP
from common.events.values import Money, OrderLine
from common.openapi import Answer, Link, Route
from common.params import IdempotencyKey, OrderPath, Parameters
from common.tenancy import order_id_of, owner_of, split_saga_id
from common.web import Blueprint, JsonView, caller_of, saga_of
from payment import queries
from payment.checkout import CheckoutRequest, PaymentStore, checkout
from payment.domain import PaymentStatus, RefundStatus, caller_scoped_key
from payment.gateway import PaymentGateway
from payment.refunds import retry_refund


class CheckoutHeaders(Parameters):
    idempotency_key: IdempotencyKey = Field(alias="Idempotency-Key")


class CheckoutAnswer(BaseModel):
    """The answer to a checkout, the same for every replay of its Idempotency-Key."""

    order_id: str
    payment_id: UUID
    status: PaymentStatus = Field(description="CAPTURED, DECLINED or FAILED (nothing charged)")
    decline_reason: str | None
    order_url: str = Field(description="where to poll the order (also in Location)")


class RefundAnswer(BaseModel):
    refund_id: UUID
    status: RefundStatus
    reason: str
    amount: Money
    attempts: int
    last_error: str | None
    retried_by: str | None = Field(description="the operator who last queued it again after it failed")
    updated_at: datetime


class PaymentAnswer(BaseModel):
    payment_id: UUID
    order_id: str = Field(description="the order id as its shop knows it")
    owner: str = Field(description="the shop whose order it is (the name of the key of its checkout)")
    customer_id: str
    status: PaymentStatus
    amount: Money
    lines: list[OrderLine] = Field(description="what was bought, as the checkout sent it")
    failure_reason: str | None
    gateway_reference: str | None
    created_at: datetime
    updated_at: datetime
    refund: RefundAnswer | None


class RefundQueued(BaseModel):
    order_id: str
    owner: str
    refund_id: UUID
    status: RefundStatus


PAYMENT = Route(
    "GET",
    "/payments/{order_id}",
    "The payment and refund of an order",
    path_params=OrderPath,
    responses={200: Answer("the payment", PaymentAnswer), 404: "not_found: no payment for this order"},
    access=PAYMENT_READ,
)
RETRY_REFUND = Route(
    "POST",
    "/payments/{order_id}/refund/retry",
    "Operator: retry a refund that failed for good",
    path_params=OrderPath,
    responses={
        202: Answer("queued again", RefundQueued),
        409: "no_failed_refund: the order has no refund in state FAILED (or no payment at all)",
    },
    access=OPERATOR,
)
CHECKOUT = Route(
    "POST",
    "/checkout",
    "Charge the customer and start the order saga",
    request=CheckoutRequest,
    headers=CheckoutHeaders,
    responses={
        202: Answer(
            "accepted (charged, declined or failed: see status); poll Location",
            CheckoutAnswer,
            headers={"Location": "the order's URL"},
            links={"payment": Link(PAYMENT, {"order_id": "$response.body#/order_id"})},
        ),
        409: "idempotency_key_reused: the key came with another body; order_id_taken: another key"
        " already paid for this order id",
    },
    access=SHOP,
)
ROUTES = (CHECKOUT, PAYMENT, RETRY_REFUND)


@dataclass(frozen=True)
class PaymentDependencies:
    """What payment's views work with (provided by `payment.app.create_app`)."""

    engine: AsyncEngine
    gateway: PaymentGateway
    store: PaymentStore
    order_url: str  # the order service's base URL, where a checkout's answer sends the shop to poll


blueprint = Blueprint("payment")


@blueprint.serve(CHECKOUT)
class Checkout(JsonView):
    async def post(self, request: Request, headers: CheckoutHeaders, body: CheckoutRequest) -> Response:
        needs = self.dependency(PaymentDependencies)
        owner = caller_of(request).name
        answer = await checkout(
            needs.store,
            needs.gateway,
            owner=owner,
            idempotency_key=caller_scoped_key(owner, headers.idempotency_key),
            request=body,
            order_url=needs.order_url,
        )
        return self.json(answer.body, status=answer.status, headers={"Location": answer.body["order_url"]})


@blueprint.serve(PAYMENT)
class Payment(JsonView):
    async def get(self, request: Request, order_id: str) -> Response:
        payment, refund = await queries.payment_and_refund(
            self.dependency(PaymentDependencies).engine, saga_of(request, order_id)
        )
        return self.json(_describe(payment, refund))


@blueprint.serve(RETRY_REFUND)
class RetryRefund(JsonView):
    async def post(self, request: Request, order_id: str) -> Response:
        saga = saga_of(request, order_id)
        engine = self.dependency(PaymentDependencies).engine
        refund_id = await retry_refund(engine, saga, by=caller_of(request).name)
        owner, order_id = split_saga_id(saga)
        return self.json(
            {"order_id": order_id, "owner": owner, "refund_id": str(refund_id), "status": "PENDING"},
            status=202,
        )


def _describe(payment: Any, refund: Any) -> dict[str, Any]:
    return {
        "payment_id": str(payment.payment_id),
        "order_id": order_id_of(payment.order_id),
        "owner": owner_of(payment.order_id),
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
            "retried_by": refund.retried_by,
            "updated_at": refund.updated_at.isoformat(),
        },
    }
