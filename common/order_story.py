"""An order's whole story from the three services' APIs: saga state, payment, shipment, parked events."""

from __future__ import annotations

from typing import Any

from common.config import Service
from common.service_apis import NotFound, ServiceApis
from common.tenancy import SEPARATOR


def order_story(apis: ServiceApis, order_id: str) -> dict[str, Any]:
    """Everything the services know about one order, named `shop:order_id` (an operator sees every
    shop). Raises NotFound when no service knows it."""
    order = apis.get_or_none(Service.ORDER, f"/orders/{order_id}")
    payment = apis.get_or_none(Service.PAYMENT, f"/payments/{order_id}")
    shipment = apis.get_or_none(Service.DELIVERY, f"/shipments/{order_id}")
    parked = {
        service.value: apis.get(service, "/dead-letters", order_id=order_id)["items"] for service in Service
    }
    if order is None and payment is None and shipment is None and not any(parked.values()):
        hint = "" if SEPARATOR in order_id else " (name an order as shop:order_id)"
        raise NotFound(f"no service knows order {order_id}{hint}")
    return {
        "order_id": order_id,
        "order": order,
        "payment": payment,
        "shipment": shipment,
        "dead_letters": parked,
        "pending": pending_work(order, payment),
    }


def pending_work(order: dict[str, Any] | None, payment: dict[str, Any] | None) -> list[str]:
    """Work scheduled for this order that has not happened yet (deadlines, refunds in progress)."""
    pending = []
    if order is not None and order["status"] == "PLACED" and order.get("deadline_at"):
        pending.append(
            f"delivery deadline at {order['deadline_at']} (then delivery is asked to cancel, reason timeout)"
        )
    cancellation = order.get("cancellation") if order is not None else None
    if cancellation is not None and cancellation["status"] == "requested":
        pending.append(
            f"cancellation ({cancellation['reason']}) waiting for delivery: it confirms (then payment"
            " refunds) or refuses because the parcel shipped (then the order completes)"
        )
    refund = payment.get("refund") if payment is not None else None
    if refund is not None and refund["status"] == "PENDING":
        pending.append(f"refund {refund['refund_id']} pending after {refund['attempts']} attempt(s)")
    if refund is not None and refund["status"] == "FAILED":
        pending.append(
            f"refund {refund['refund_id']} FAILED for good: an operator retries it with"
            f" POST /payments/{payment['owner']}:{payment['order_id']}/refund/retry"
        )
    return pending
