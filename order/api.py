"""Order's HTTP API: an order's status and timeline, listing by status, and the customer's cancel.

An order payment accepted is never unknown here: until the order service has recorded it, its status is
ACCEPTED, answered from what payment knows (`order/payment_lookup.py`), and a cancel is honoured
(`order/cancel.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from faust.web import Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from common.access import SHOP, SHOP_READ
from common.events.values import Money, OrderLine
from common.messaging.unit_of_work import UnitOfWork
from common.openapi import Answer, Link, Route
from common.params import DIGITS, OrderPath, OrderReference, Parameters, PrintableText
from common.tenancy import OWNER_PATTERN, order_id_of, owner_of, visible_owners
from common.web import Blueprint, JsonView, caller_of, saga_of
from order import queries
from order.cancel import ACCEPTED, cancel_order
from order.payment_lookup import AcceptedCheckout, PaymentLookup
from order.saga import Cancellation, OrderStatus, Outcome, awaiting

# An order payment accepted and the order service has not recorded yet.
Accepted = Literal["ACCEPTED"]


class OrderListQuery(Parameters):
    owner: Annotated[str, Field(max_length=64, pattern=f"^{OWNER_PATTERN}$")] | None = Field(
        default=None,
        description="operators: only this shop's orders (a shop sees only its own, whatever it names)",
    )
    status: OrderStatus | None = Field(default=None, description="only orders in this status")
    customer_id: PrintableText | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="only this customer's orders (the checkout's customer_id)",
    )
    stuck_for: Annotated[Annotated[int, Field(ge=0, le=1_000_000_000)] | None, DIGITS] = Field(
        default=None, description="seconds: only non-terminal orders idle that long, oldest first"
    )
    limit: Annotated[int, Field(ge=1, le=500, description="at most this many"), DIGITS] = 50
    after: OrderReference | None = Field(
        default=None,
        description="the previous page's `next_after` (its last order): the page after it, found by a"
        " seek on the list's index however deep (404 if it names no order of yours)",
    )
    offset: Annotated[
        int, Field(ge=0, le=10_000, description="items to skip (use `after` to go further)"), DIGITS
    ] = 0


class CancellationAnswer(BaseModel):
    """Where a requested cancel stands: delivery decides, since only it knows whether the parcel left."""

    status: Cancellation = Field(description="requested (delivery asked), confirmed (refunded), refused")
    reason: str | None = Field(description="customer or timeout (out_of_stock if delivery found none)")
    detail: str


class OrderAnswer(BaseModel):
    """An order as every order answer shows it. Answers only grow: add new fields as optional."""

    order_id: str = Field(description="the order id as its shop knows it")
    owner: str = Field(description="the shop whose order it is (the name of the key of its checkout)")
    status: OrderStatus | Accepted = Field(
        description="the saga's status; ACCEPTED while payment has accepted the checkout and the order"
        " service has not recorded it yet"
    )
    payment_id: UUID
    customer_id: str
    amount: Money
    lines: list[OrderLine]
    cancel_reason: str | None
    cancellation: CancellationAnswer | None = Field(
        default=None, description="null if nobody asked to cancel"
    )
    waiting_for: str | None = Field(description="what the saga waits for; null once terminal")
    deadline_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TimelineEntry(BaseModel):
    at: datetime
    kind: str = Field(description="received, emitted, requested, rejected or ignored")
    event_type: str
    event_id: UUID | None
    status_before: OrderStatus | None
    status_after: OrderStatus | None
    detail: str | None


class OrderDetail(OrderAnswer):
    timeline: list[TimelineEntry] = Field(description="every event received, emitted, ignored or rejected")


class OrderList(BaseModel):
    items: list[OrderAnswer]
    total: int
    limit: int
    offset: int
    next_after: str | None = Field(
        description="the page's last order (`owner:order_id`): pass as `after` for the next page; null on"
        " the last"
    )


class CancelAnswer(BaseModel):
    order_id: str
    owner: str
    status: OrderStatus | Accepted = Field(description="the order's status after the request")
    cancellation: Cancellation | None = Field(description="requested while delivery has not answered")
    outcome: Outcome = Field(description="applied: delivery is asked; ignored: already cancelled or asked")


SHOW = Route(
    "GET",
    "/orders/{order_id}",
    "Status and timeline of one order (ACCEPTED while payment has accepted it and the order service has"
    " not recorded it yet)",
    path_params=OrderPath,
    responses={
        200: Answer(
            "the order",
            OrderDetail,
            links={"cancel": Link("post_orders_order_id_cancel", {"order_id": "$request.path.order_id"})},
        ),
        404: "not_found: payment never accepted a checkout for this order",
    },
    access=SHOP_READ,
)
LIST = Route(
    "GET",
    "/orders",
    "Orders, newest first, optionally by status or customer; stuck_for=SECONDS lists the non-terminal"
    " orders that have not moved for that long, oldest first",
    query=OrderListQuery,
    responses={
        200: Answer(
            "a page of orders",
            OrderList,
            links={"first": Link(SHOW, {"order_id": "$response.body#/items/0/order_id"})},
        ),
        404: "not_found: `after` names no order of yours",
    },
    access=SHOP_READ,
)
CANCEL = Route(
    "POST",
    "/orders/{order_id}/cancel",
    "Customer cancel: delivery is asked, and the payment is refunded once it confirms; a parcel that has"
    " shipped is never refunded (409 if known now, `cancellation.status: refused` if learned later)",
    path_params=OrderPath,
    responses={
        202: Answer("cancellation requested (or already under way, or already cancelled)", CancelAnswer),
        404: "not_found: payment never accepted a checkout for this order",
        409: "not_cancellable: already shipped, or the payment failed (nothing to cancel)",
    },
    access=SHOP,
)
ROUTES = (SHOW, LIST, CANCEL)


@dataclass(frozen=True)
class OrderDependencies:
    """What order's views work with (provided by `order.app.create_app`)."""

    engine: AsyncEngine
    unit_of_work: Callable[[], UnitOfWork]
    payments: PaymentLookup


blueprint = Blueprint("order")


@blueprint.serve(SHOW)
class Order(JsonView):
    async def get(self, request: Request, order_id: str) -> Response:
        needs = self.dependency(OrderDependencies)
        found = await queries.find_order(needs.engine, needs.payments, saga_of(request, order_id))
        if isinstance(found, queries.AcceptedOrder):
            return self.json(describe_accepted(found.checkout, cancel_requested=found.cancel_requested))
        return self.json(
            {**describe_order(found.order), "timeline": [describe_entry(e) for e in found.timeline]}
        )


@blueprint.serve(LIST)
class Orders(JsonView):
    async def get(self, request: Request, query: OrderListQuery) -> Response:
        after = None if query.after is None else saga_of(request, query.after)
        rows, total, last = await queries.order_page(
            self.dependency(OrderDependencies).engine,
            owners=visible_owners(caller_of(request), query.owner),
            status=query.status,
            customer_id=query.customer_id,
            stuck_for=query.stuck_for,
            limit=query.limit,
            offset=query.offset,
            after=after,
        )
        items = [describe_order(row) for row in rows]
        page = {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
        return self.json({**page, "next_after": last})  # a saga id: owner:order_id


@blueprint.serve(CANCEL)
class Cancel(JsonView):
    async def post(self, request: Request, order_id: str) -> Response:
        needs = self.dependency(OrderDependencies)
        saga = saga_of(request, order_id)
        answer = await cancel_order(needs.unit_of_work, needs.payments, saga, by=caller_of(request).name)
        return self.json(
            {
                "order_id": order_id_of(answer.order_id),
                "owner": owner_of(answer.order_id),
                "status": answer.status,
                "cancellation": answer.cancellation,
                "outcome": answer.outcome,
            },
            status=202,
        )


_CANCELLATION_DETAIL = {
    Cancellation.REQUESTED: "waiting for delivery to confirm that nothing has shipped",
    Cancellation.CONFIRMED: "confirmed by delivery: nothing will ship, the payment is refunded",
    Cancellation.REFUSED: "cancel refused: already shipped",
}


def describe_cancellation(state: str | None, reason: str | None) -> dict[str, Any] | None:
    """Where a requested cancel stands, in words a shop can show; None if nobody asked to cancel."""
    if state is None:
        return None
    cancellation = Cancellation(state)
    return {"status": cancellation.value, "reason": reason, "detail": _CANCELLATION_DETAIL[cancellation]}


def describe_order(order: Any) -> dict[str, Any]:
    return {
        "order_id": order_id_of(order.order_id),
        "owner": owner_of(order.order_id),
        "status": order.status,
        "payment_id": str(order.payment_id),
        "customer_id": order.customer_id,
        "amount": {"amount_minor": order.amount_minor, "currency": order.currency},
        "lines": order.lines,
        "cancel_reason": order.cancel_reason,
        "cancellation": describe_cancellation(order.cancellation, order.cancel_reason),
        "waiting_for": awaiting(order.status),
        "deadline_at": order.deadline_at.isoformat() if order.deadline_at else None,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }


def describe_accepted(checkout: AcceptedCheckout, *, cancel_requested: bool) -> dict[str, Any]:
    """An order payment accepted and the order service has not recorded yet, as payment knows it."""
    reason = "customer" if cancel_requested else None
    return {
        "order_id": checkout.order_id,
        "owner": checkout.owner,
        "status": ACCEPTED,
        "payment_id": checkout.payment_id,
        "customer_id": checkout.customer_id,
        "amount": checkout.amount,
        "lines": checkout.lines,
        "cancel_reason": reason,
        "cancellation": describe_cancellation(Cancellation.REQUESTED if cancel_requested else None, reason),
        "waiting_for": "the order service to record the payment (PaymentCompleted or PaymentFailed)",
        "deadline_at": None,
        "created_at": checkout.created_at,
        "updated_at": checkout.created_at,
        "timeline": [],
    }


def describe_entry(entry: Any) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "kind": entry.kind,
        "event_type": entry.event_type,
        "event_id": str(entry.event_id) if entry.event_id else None,
        "status_before": entry.status_before,
        "status_after": entry.status_after,
        "detail": entry.detail,
    }
