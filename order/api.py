"""Order's HTTP API: an order's status and timeline, listing by status, and the customer's cancel.

An order payment accepted is never unknown here: until the order service has recorded it, its status is
ACCEPTED, answered from what payment knows (`order/payment_lookup.py`), and a cancel is honoured.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import faust
from sqlalchemy import func, select

from common.app import ServiceContext
from common.db import reading
from common.errors import NotFound
from common.openapi import Route
from common.web import ApiError, JsonView, query_int
from order import early_cancels, models
from order.cancel import ACCEPTED, cancel_order
from order.payment_lookup import AcceptedCheckout, HttpPaymentLookup
from order.saga import TERMINAL_STATUSES, Cancellation, OrderStatus, awaiting

ROUTES = [
    Route(
        "GET",
        "/orders/{order_id}",
        "Status and timeline of one order (ACCEPTED while payment has accepted it and the order service"
        " has not recorded it yet)",
        responses={200: "OK", 404: "unknown", 503: "payment cannot be asked about an order not recorded yet"},
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
        "Customer cancel: delivery is asked, and the payment is refunded once it confirms; a parcel that has"
        " shipped is never refunded (409 if known now, `cancellation.status: refused` if learned later)",
        responses={
            202: "cancellation requested (or already under way)",
            404: "unknown",
            409: "already shipped, or the payment failed",
            503: "payment cannot be asked about an order not recorded yet",
        },
    ),
]

_CANCELLATION_DETAIL = {
    Cancellation.REQUESTED: "waiting for delivery to confirm that nothing has shipped",
    Cancellation.CONFIRMED: "confirmed by delivery: nothing will ship, the payment is refunded",
    Cancellation.REFUSED: "cancel refused: already shipped",
}


def attach_api(app: faust.App, context: ServiceContext) -> None:
    engine = context.engine
    payments = HttpPaymentLookup(context.settings.payment_lookup_url())
    context.routes.extend(ROUTES)

    @app.page("/orders/{order_id}")
    class Order(JsonView):
        async def get(self, request: Any, order_id: str) -> Any:
            async with reading(engine) as conn:
                order = await _order_with_timeline(conn, order_id)
                early = order is None and bool(await early_cancels.pending(conn, [order_id]))
            if order is not None:
                return self.json(order)
            checkout = await payments.accepted_checkout(order_id)
            if checkout is None:
                raise NotFound(f"order {order_id} not found")
            return self.json(describe_accepted(checkout, cancel_requested=early))

    @app.page("/orders")
    class Orders(JsonView):
        async def get(self, request: Any) -> Any:
            limit = query_int(request, "limit", 50, minimum=1, maximum=500)
            offset = query_int(request, "offset", 0, maximum=10**9)
            status = request.query.get("status")
            stuck_for = query_int(request, "stuck_for", -1, maximum=10**9)
            orders = models.orders
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
            answer = await cancel_order(context.unit_of_work, payments, order_id)
            return self.json(
                {
                    "order_id": answer.order_id,
                    "status": answer.status,
                    "cancellation": answer.cancellation,
                    "outcome": answer.outcome,
                },
                status=202,
            )


async def _order_with_timeline(conn: Any, order_id: str) -> dict[str, Any] | None:
    orders, timeline = models.orders, models.timeline
    order = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).first()
    if order is None:
        return None
    entries = (
        await conn.execute(select(timeline).where(timeline.c.order_id == order_id).order_by(timeline.c.id))
    ).all()
    return {**describe_order(order), "timeline": [describe_entry(entry) for entry in entries]}


def describe_cancellation(state: str | None, reason: str | None) -> dict[str, Any] | None:
    """Where a requested cancel stands, in words a shop can show; None if nobody asked to cancel."""
    if state is None:
        return None
    cancellation = Cancellation(state)
    return {"status": cancellation.value, "reason": reason, "detail": _CANCELLATION_DETAIL[cancellation]}


def describe_order(order: Any) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
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
