"""Order's HTTP API: an order's status and timeline, listing by status, and the customer's cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import faust
from sqlalchemy import func, select

from common.app import ServiceContext
from common.db import reading
from common.messaging.outbox import enqueue
from common.openapi import Route
from common.web import ApiError, JsonView, not_found, query_int
from order import models
from order.handlers import advance
from order.saga import TERMINAL_STATUSES, OrderStatus, Outcome, SagaInput, awaiting

ROUTES = [
    Route(
        "GET", "/orders/{order_id}", "Status and timeline of one order", responses={200: "OK", 404: "unknown"}
    ),
    Route(
        "GET",
        "/orders",
        "Orders, newest first, optionally by status; stuck_for=SECONDS lists the non-terminal orders that"
        " have not moved for that long, oldest first",
        query=("status", "stuck_for", "limit", "offset"),
    ),
    Route(
        "POST",
        "/orders/{order_id}/cancel",
        "Customer cancel: allowed until the order ships",
        responses={
            202: "cancelling (refund follows)",
            404: "unknown",
            409: "already shipped or not cancellable",
        },
    ),
]


def attach_api(app: faust.App, context: ServiceContext) -> None:
    engine = context.engine
    orders, timeline = models.orders, models.timeline
    context.routes.extend(ROUTES)

    @app.page("/orders/{order_id}")
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

    @app.page("/orders")
    class Orders(JsonView):
        async def get(self, request: Any) -> Any:
            limit = query_int(request, "limit", 50, minimum=1, maximum=500)
            offset = query_int(request, "offset", 0, maximum=10**9)
            status = request.query.get("status")
            stuck_for = query_int(request, "stuck_for", -1, maximum=10**9)
            query = select(orders).limit(limit).offset(offset)
            count = select(func.count()).select_from(orders)
            if stuck_for >= 0:
                # Not terminal and untouched since the cut-off: oldest first, they are the most urgent.
                idle = (
                    orders.c.status.not_in([terminal.value for terminal in TERMINAL_STATUSES]),
                    orders.c.updated_at <= func.now() - timedelta(seconds=stuck_for),
                )
                query = query.where(*idle).order_by(orders.c.updated_at, orders.c.order_id)
                count = count.where(*idle)
            else:
                query = query.order_by(orders.c.created_at.desc(), orders.c.order_id)
            if status is not None:
                if status not in OrderStatus.__members__:
                    allowed = ", ".join(OrderStatus.__members__)
                    raise ApiError(400, "bad_query", f"unknown status {status!r}; one of: {allowed}")
                query = query.where(orders.c.status == status)
                count = count.where(orders.c.status == status)
            async with reading(engine) as conn:
                rows = (await conn.execute(query)).all()
                total = await conn.scalar(count)
            return self.json(
                {
                    "items": [describe_order(row) for row in rows],
                    "total": total,
                    "limit": limit,
                    "offset": offset,
                }
            )

    @app.page("/orders/{order_id}/cancel")
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
