"""Order's HTTP API: an order's status and timeline, listing by status, and the customer's cancel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import faust
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from common.app import ServiceContext
from common.db import reading
from common.events.values import Money, OrderLine
from common.messaging.outbox import enqueue
from common.openapi import Answer, Link, Route
from common.params import DIGITS, Offset, OrderPath, Parameters
from common.web import ApiError, JsonView, not_found, serve
from order import models
from order.handlers import advance
from order.saga import TERMINAL_STATUSES, OrderStatus, Outcome, SagaInput, awaiting


class OrderListQuery(Parameters):
    status: OrderStatus | None = Field(default=None, description="only orders in this status")
    stuck_for: Annotated[Annotated[int, Field(ge=0, le=1_000_000_000)] | None, DIGITS] = Field(
        default=None, description="seconds: only non-terminal orders idle that long, oldest first"
    )
    limit: Annotated[int, Field(ge=1, le=500, description="at most this many"), DIGITS] = 50
    offset: Offset = 0


class OrderAnswer(BaseModel):
    """An order as every order answer shows it. Answers only grow: add new fields as optional."""

    order_id: str
    status: OrderStatus
    payment_id: UUID
    customer_id: str
    amount: Money
    lines: list[OrderLine]
    cancel_reason: str | None
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


class CancelAnswer(BaseModel):
    order_id: str
    status: OrderStatus | None
    outcome: Outcome


SHOW = Route(
    "GET",
    "/orders/{order_id}",
    "Status and timeline of one order",
    path_params=OrderPath,
    responses={
        200: Answer(
            "the order",
            OrderDetail,
            links={"cancel": Link("post_orders_order_id_cancel", {"order_id": "$request.path.order_id"})},
        ),
        404: "not_found: no such order",
    },
)
LIST = Route(
    "GET",
    "/orders",
    "Orders, newest first, optionally by status; stuck_for=SECONDS lists the non-terminal orders that"
    " have not moved for that long, oldest first",
    query=OrderListQuery,
    responses={
        200: Answer(
            "a page of orders",
            OrderList,
            links={"first": Link(SHOW, {"order_id": "$response.body#/items/0/order_id"})},
        )
    },
)
CANCEL = Route(
    "POST",
    "/orders/{order_id}/cancel",
    "Customer cancel: allowed until the order ships",
    path_params=OrderPath,
    responses={
        202: Answer("cancelling (refund follows), or already cancelled", CancelAnswer),
        404: "not_found: no such order",
        409: "not_cancellable: already shipped, or nothing to cancel",
    },
)
ROUTES = (SHOW, LIST, CANCEL)


def attach_api(app: faust.App, context: ServiceContext) -> None:
    engine = context.engine
    orders, timeline = models.orders, models.timeline
    documented = context.routes

    @serve(app, documented, SHOW)
    class Order(JsonView):
        async def get(self, request: Any, order_id: str) -> Any:
            async with reading(engine) as conn:
                order = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).first()
                entries = (
                    await conn.execute(
                        select(timeline).where(timeline.c.order_id == order_id).order_by(timeline.c.id)
                    )
                ).all()
            if order is None:
                raise not_found(f"order {order_id}")
            return self.json(
                {**describe_order(order), "timeline": [describe_entry(entry) for entry in entries]}
            )

    @serve(app, documented, LIST)
    class Orders(JsonView):
        async def get(self, request: Any, query: OrderListQuery) -> Any:
            limit, offset, status, stuck_for = query.limit, query.offset, query.status, query.stuck_for
            select_orders = select(orders).limit(limit).offset(offset)
            count = select(func.count()).select_from(orders)
            if stuck_for is not None:
                # Not terminal and untouched since the cut-off: oldest first, they are the most urgent.
                idle = (
                    orders.c.status.not_in([terminal.value for terminal in TERMINAL_STATUSES]),
                    orders.c.updated_at <= func.now() - timedelta(seconds=stuck_for),
                )
                select_orders = select_orders.where(*idle).order_by(orders.c.updated_at, orders.c.order_id)
                count = count.where(*idle)
            else:
                select_orders = select_orders.order_by(orders.c.created_at.desc(), orders.c.order_id)
            if status is not None:
                select_orders = select_orders.where(orders.c.status == status.value)
                count = count.where(orders.c.status == status.value)
            async with reading(engine) as conn:
                rows = (await conn.execute(select_orders)).all()
                total = await conn.scalar(count)
            return self.json(
                {
                    "items": [describe_order(row) for row in rows],
                    "total": total,
                    "limit": limit,
                    "offset": offset,
                }
            )

    @serve(app, documented, CANCEL)
    class Cancel(JsonView):
        async def post(self, request: Any, order_id: str) -> Any:
            async with engine.begin() as conn:
                exists = await conn.scalar(select(orders.c.order_id).where(orders.c.order_id == order_id))
                if exists is None:
                    raise not_found(f"order {order_id}")
                advanced = await advance(
                    conn, order_id, SagaInput.CANCEL_REQUESTED, detail="customer asked to cancel"
                )
                await enqueue(conn, models.messaging.outbox, context.topic, advanced.emitted)
            decision = advanced.decision
            if decision.outcome is Outcome.REJECTED:
                raise ApiError(409, "not_cancellable", decision.reason, order_status=decision.new_status)
            if advanced.emitted:
                context.relay.wake()
            return self.json(
                {"order_id": order_id, "status": decision.new_status, "outcome": decision.outcome.value},
                status=202,
            )


def describe_order(order: Any) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "status": order.status,
        "payment_id": str(order.payment_id),
        "customer_id": order.customer_id,
        "amount": {"amount_minor": order.amount_minor, "currency": order.currency},
        "lines": order.lines,
        "cancel_reason": order.cancel_reason,
        "waiting_for": awaiting(order.status),
        "deadline_at": order.deadline_at.isoformat() if order.deadline_at else None,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
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
