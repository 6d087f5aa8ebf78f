"""Order's HTTP API: an order's status and timeline, listing by status, and the customer's cancel.

An order payment accepted is never unknown here: until the order service has recorded it, its status is
ACCEPTED, answered from what payment knows (`order/payment_lookup.py`), and a cancel is honoured
(`order/cancel.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from faust.web import Request, Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncEngine

from common.access import SHOP, SHOP_READ
from common.messaging.unit_of_work import UnitOfWork
from common.openapi import Answer, Link, Route
from common.params import DIGITS, OrderPath, OrderReference, Parameters, PrintableText
from common.tenancy import OWNER_PATTERN, visible_owners
from common.web import Blueprint, JsonView, caller_of, saga_of
from order import queries
from order.answers import CancelAnswer, OrderDetail, OrderList
from order.cancel import cancel_order
from order.payment_lookup import PaymentLookup
from order.saga import OrderStatus


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
        return self.answer(await queries.find_order(needs.engine, needs.payments, saga_of(request, order_id)))


@blueprint.serve(LIST)
class Orders(JsonView):
    async def get(self, request: Request, query: OrderListQuery) -> Response:
        after = None if query.after is None else saga_of(request, query.after)
        page = await queries.order_page(
            self.dependency(OrderDependencies).engine,
            owners=visible_owners(caller_of(request), query.owner),
            status=query.status,
            customer_id=query.customer_id,
            stuck_for=query.stuck_for,
            limit=query.limit,
            offset=query.offset,
            after=after,
        )
        return self.answer(page)


@blueprint.serve(CANCEL)
class Cancel(JsonView):
    async def post(self, request: Request, order_id: str) -> Response:
        needs = self.dependency(OrderDependencies)
        saga = saga_of(request, order_id)
        answer = await cancel_order(needs.unit_of_work, needs.payments, saga, by=caller_of(request).name)
        return self.answer(answer, status=202)
