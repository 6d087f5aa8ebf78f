"""Which events a shop is told about when one of its orders changes, and what each says (pure).

The rule: every change of an order's status, and every answer to a requested cancel, is one event to its
shop, in the order it happened. A cancellation's answer comes before the status it leads to (delivery
confirmed, then the order is cancelled); a refused cancel never changes the status (the parcel had
already shipped, which the shop was told). Nothing else is an event: an ignored or rejected input
changes nothing, so it says nothing.

The body is rendered from what is stored (the event's id, type, sequence, time and the order as it was),
so every attempt and every resend of one event sends the same bytes.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, assert_never
from uuid import UUID

from common.tenancy import order_id_of, owner_of
from order.saga import Cancellation, OrderStatus
from order.saga_batch import OrderRow

BODY_VERSION = 1


class ShopEventType(StrEnum):
    PLACED = "order.placed"
    REJECTED = "order.rejected"
    SCHEDULED = "order.scheduled"
    SHIPPED = "order.shipped"
    COMPLETED = "order.completed"
    CANCELLATION_REQUESTED = "order.cancellation_requested"
    CANCELLATION_CONFIRMED = "order.cancellation_confirmed"
    CANCELLATION_REFUSED = "order.cancellation_refused"
    CANCELLED = "order.cancelled"
    REFUNDED = "order.refunded"
    REFUND_FAILED = "order.refund_failed"


ALL_EVENT_TYPES = tuple(ShopEventType)


def entered(status: OrderStatus) -> ShopEventType:
    """The event an order entering `status` makes."""
    match status:
        case OrderStatus.PLACED:
            return ShopEventType.PLACED
        case OrderStatus.REJECTED:
            return ShopEventType.REJECTED
        case OrderStatus.SCHEDULED:
            return ShopEventType.SCHEDULED
        case OrderStatus.SHIPPED:
            return ShopEventType.SHIPPED
        case OrderStatus.COMPLETED:
            return ShopEventType.COMPLETED
        case OrderStatus.CANCELLING:
            return ShopEventType.CANCELLATION_REQUESTED
        case OrderStatus.CANCELLED:
            return ShopEventType.CANCELLED
        case OrderStatus.REFUNDED:
            return ShopEventType.REFUNDED
        case OrderStatus.REFUND_FAILED:
            return ShopEventType.REFUND_FAILED
        case _:
            assert_never(status)


def when(event_type: ShopEventType) -> str:
    """When a shop is told `event_type`, as the webhooks' API document says it (every type, checked by
    mypy: a type added without its words fails there, not at import)."""
    match event_type:
        case ShopEventType.PLACED:
            return "payment accepted: the order is recorded (PLACED)"
        case ShopEventType.REJECTED:
            return "the payment failed (REJECTED, final)"
        case ShopEventType.SCHEDULED:
            return "stock reserved, waiting for the carrier (SCHEDULED)"
        case ShopEventType.SHIPPED:
            return "the parcel left (SHIPPED): it will not be refunded"
        case ShopEventType.COMPLETED:
            return "delivered (COMPLETED, final)"
        case ShopEventType.CANCELLATION_REQUESTED:
            return "a cancel was asked; delivery decides (CANCELLING)"
        case ShopEventType.CANCELLATION_CONFIRMED:
            return "delivery confirmed the cancel: nothing ships, the money goes back"
        case ShopEventType.CANCELLATION_REFUSED:
            return "too late to cancel: the parcel had shipped; the money is kept"
        case ShopEventType.CANCELLED:
            return "cancelled (CANCELLED): out of stock, or a confirmed cancel; the refund follows"
        case ShopEventType.REFUNDED:
            return "the money went back (REFUNDED, final)"
        case ShopEventType.REFUND_FAILED:
            return "the refund failed for good; an operator retries it (REFUND_FAILED)"
        case _:
            assert_never(event_type)


def answered(cancellation: Cancellation) -> ShopEventType | None:
    """The event a cancellation reaching `cancellation` makes (None: the status change says it)."""
    match cancellation:
        case Cancellation.REQUESTED:
            return None  # the order is CANCELLING: order.cancellation_requested
        case Cancellation.CONFIRMED:
            return ShopEventType.CANCELLATION_CONFIRMED
        case Cancellation.REFUSED:
            return ShopEventType.CANCELLATION_REFUSED
        case _:
            assert_never(cancellation)


def events_of(before: OrderRow | None, after: OrderRow) -> tuple[ShopEventType, ...]:
    """What the shop is told when its order goes from `before` (None: it did not exist) to `after`."""
    told: list[ShopEventType] = []
    cancellation_before = before.cancellation if before is not None else None
    if after.cancellation is not None and after.cancellation != cancellation_before:
        answer = answered(after.cancellation)
        if answer is not None:
            told.append(answer)
    if before is None or before.status != after.status:
        told.append(entered(after.status))
    return tuple(told)


def snapshot(order: OrderRow) -> dict[str, Any]:
    """The order as an event shows it (no shipping address: the shop has it, and a webhook is no place
    for an address)."""
    cancellation = (
        {"status": order.cancellation.value, "reason": order.cancel_reason}
        if order.cancellation is not None
        else None
    )
    return {
        "order_id": order_id_of(order.order_id),
        "owner": owner_of(order.order_id),
        "status": order.status.value,
        "payment_id": str(order.payment_id),
        "customer_id": order.customer_id,
        "amount": {"amount_minor": order.amount_minor, "currency": order.currency},
        "lines": order.lines,
        "cancel_reason": order.cancel_reason,
        "cancellation": cancellation,
    }


def render(
    event_id: UUID, event_type: str, sequence: int, occurred_at: datetime, order: dict[str, Any]
) -> bytes:
    """The request body of one event (BODY_VERSION): the same bytes on every attempt."""
    body = {
        "id": str(event_id),
        "type": event_type,
        "version": BODY_VERSION,
        "sequence": sequence,
        "occurred_at": occurred_at.isoformat(),
        "order": order,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
