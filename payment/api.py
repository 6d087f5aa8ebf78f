"""Payment's HTTP API: checkout, payment status, and the operator's refund retry."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from faust.web import Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from common.access import OPERATOR, PAYMENT_READ, SHOP
from common.openapi import Answer, Link, Route
from common.params import IdempotencyKey, OrderPath, Parameters
from common.web import Blueprint, JsonView, caller_of, saga_of
from payment import queries
from payment.answers import PaymentAnswer, RefundQueued
from payment.checkout import CheckoutRequest, PaymentStore, checkout
from payment.domain import PaymentStatus, caller_scoped_key
from payment.gateway import PaymentGateway
from payment.refunds import RefundStore, retry_refund


class CheckoutHeaders(Parameters):
    idempotency_key: IdempotencyKey = Field(alias="Idempotency-Key")


class CheckoutAnswer(BaseModel):
    """The answer to a checkout, the same for every replay of its Idempotency-Key."""

    order_id: str
    payment_id: UUID
    status: PaymentStatus = Field(description="CAPTURED, DECLINED or FAILED (nothing charged)")
    decline_reason: str | None
    order_url: str = Field(description="where to poll the order (also in Location)")


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
    refunds: RefundStore
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
        engine = self.dependency(PaymentDependencies).engine
        return self.answer(await queries.payment_and_refund(engine, saga_of(request, order_id)))


@blueprint.serve(RETRY_REFUND)
class RetryRefund(JsonView):
    async def post(self, request: Request, order_id: str) -> Response:
        saga = saga_of(request, order_id)
        refunds = self.dependency(PaymentDependencies).refunds
        refund_id = await retry_refund(refunds, saga, by=caller_of(request).name)
        return self.answer(RefundQueued.of(saga, refund_id), status=202)
