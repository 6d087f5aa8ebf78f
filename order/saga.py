"""The order saga as a pure state machine: (status, input) → decision. No I/O, no clock, no database.

Statuses, in the order a saga moves through them:

    (none) ─PaymentCompleted→ PLACED ─DeliveryScheduled→ SCHEDULED ─Shipped→ SHIPPED ─Delivered→ COMPLETED
    (none) ─PaymentFailed→ REJECTED
    PLACED ─OutOfStock | CancelRequested | DeadlineExpired→ CANCELLED   (emits OrderCancelled)
    SCHEDULED ─CancelRequested→ CANCELLED                               (emits OrderCancelled)
    CANCELLED ─PaymentRefunded→ REFUNDED
    CANCELLED ─PaymentRefundFailed→ REFUND_FAILED ─PaymentRefunded→ REFUNDED

Every input gets one of three outcomes:
- APPLIED: the status changes and/or events are emitted;
- IGNORED: legal but without effect — a duplicate of what got us here, or a late event the saga has
  already moved past (delivery's answer to an order that was cancelled meanwhile);
- REJECTED: illegal (e.g. Delivered before Shipped, a cancel after shipment); the caller records it on
  the order's timeline and never applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrderStatus(StrEnum):
    PLACED = "PLACED"
    SCHEDULED = "SCHEDULED"
    SHIPPED = "SHIPPED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    REFUND_FAILED = "REFUND_FAILED"
    REFUNDED = "REFUNDED"


class SagaInput(StrEnum):
    PAYMENT_COMPLETED = "PAYMENT_COMPLETED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_REFUNDED = "PAYMENT_REFUNDED"
    PAYMENT_REFUND_FAILED = "PAYMENT_REFUND_FAILED"
    DELIVERY_SCHEDULED = "DELIVERY_SCHEDULED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"  # the customer, through the HTTP API
    DEADLINE_EXPIRED = "DEADLINE_EXPIRED"  # delivery did not answer OrderPlaced in time


class Emit(StrEnum):
    ORDER_PLACED = "ORDER_PLACED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    ORDER_COMPLETED = "ORDER_COMPLETED"


class CancelReason(StrEnum):
    OUT_OF_STOCK = "out_of_stock"
    CUSTOMER = "customer"
    TIMEOUT = "timeout"


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Emission:
    kind: Emit
    reason: CancelReason | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    new_status: OrderStatus | None
    emits: tuple[Emission, ...] = ()
    reason: str = ""


TERMINAL_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.REJECTED, OrderStatus.REFUNDED})


def is_terminal(status: OrderStatus | None) -> bool:
    """A terminal saga never changes again."""
    return status in TERMINAL_STATUSES


def can_cancel(status: OrderStatus | None) -> bool:
    """The customer may cancel until the parcel ships."""
    return status in (OrderStatus.PLACED, OrderStatus.SCHEDULED)


@dataclass(frozen=True)
class _Move:
    to: OrderStatus
    emits: tuple[Emission, ...] = ()


@dataclass(frozen=True)
class _Ignore:
    why: str


@dataclass(frozen=True)
class _Reject:
    why: str


def _cancel(reason: CancelReason) -> _Move:
    return _Move(OrderStatus.CANCELLED, (Emission(Emit.ORDER_CANCELLED, reason),))


S, E = OrderStatus, SagaInput
_DUPLICATE = _Ignore("duplicate: the saga has already moved past this event")
_ALREADY_CANCELLED = _Ignore("the order is already cancelled")
_TOO_LATE = _Reject("too late to cancel: the order has already shipped")

# Every legal pair; anything not listed is rejected as illegal.
_RULES: dict[tuple[OrderStatus | None, SagaInput], _Move | _Ignore | _Reject] = {
    (None, E.PAYMENT_COMPLETED): _Move(S.PLACED, (Emission(Emit.ORDER_PLACED),)),
    (None, E.PAYMENT_FAILED): _Move(S.REJECTED),
    # Waiting for delivery's answer.
    (S.PLACED, E.DELIVERY_SCHEDULED): _Move(S.SCHEDULED),
    (S.PLACED, E.OUT_OF_STOCK): _cancel(CancelReason.OUT_OF_STOCK),
    (S.PLACED, E.CANCEL_REQUESTED): _cancel(CancelReason.CUSTOMER),
    (S.PLACED, E.DEADLINE_EXPIRED): _cancel(CancelReason.TIMEOUT),
    (S.PLACED, E.PAYMENT_COMPLETED): _DUPLICATE,
    # Reserved, waiting for the carrier.
    (S.SCHEDULED, E.SHIPPED): _Move(S.SHIPPED),
    (S.SCHEDULED, E.CANCEL_REQUESTED): _cancel(CancelReason.CUSTOMER),
    (S.SCHEDULED, E.DEADLINE_EXPIRED): _Ignore("delivery has answered; the deadline no longer applies"),
    (S.SCHEDULED, E.DELIVERY_SCHEDULED): _DUPLICATE,
    (S.SCHEDULED, E.PAYMENT_COMPLETED): _DUPLICATE,
    # On its way.
    (S.SHIPPED, E.DELIVERED): _Move(S.COMPLETED, (Emission(Emit.ORDER_COMPLETED),)),
    (S.SHIPPED, E.CANCEL_REQUESTED): _TOO_LATE,
    (S.SHIPPED, E.DEADLINE_EXPIRED): _DUPLICATE,
    (S.SHIPPED, E.DELIVERY_SCHEDULED): _DUPLICATE,
    (S.SHIPPED, E.SHIPPED): _DUPLICATE,
    (S.SHIPPED, E.PAYMENT_COMPLETED): _DUPLICATE,
    (S.COMPLETED, E.CANCEL_REQUESTED): _TOO_LATE,
    (S.COMPLETED, E.DEADLINE_EXPIRED): _DUPLICATE,
    (S.COMPLETED, E.DELIVERY_SCHEDULED): _DUPLICATE,
    (S.COMPLETED, E.SHIPPED): _DUPLICATE,
    (S.COMPLETED, E.DELIVERED): _DUPLICATE,
    (S.COMPLETED, E.PAYMENT_COMPLETED): _DUPLICATE,
    (S.REJECTED, E.PAYMENT_FAILED): _DUPLICATE,
    (S.REJECTED, E.CANCEL_REQUESTED): _Reject("the payment failed; there is nothing to cancel"),
    # Cancelled: delivery's late answers and repeated cancels change nothing; the refund ends the saga.
    (S.CANCELLED, E.PAYMENT_REFUNDED): _Move(S.REFUNDED),
    (S.CANCELLED, E.PAYMENT_REFUND_FAILED): _Move(S.REFUND_FAILED),
    (S.CANCELLED, E.DELIVERY_SCHEDULED): _ALREADY_CANCELLED,
    (S.CANCELLED, E.OUT_OF_STOCK): _ALREADY_CANCELLED,
    (S.CANCELLED, E.CANCEL_REQUESTED): _ALREADY_CANCELLED,
    (S.CANCELLED, E.DEADLINE_EXPIRED): _ALREADY_CANCELLED,
    (S.CANCELLED, E.PAYMENT_COMPLETED): _DUPLICATE,
    (S.REFUND_FAILED, E.PAYMENT_REFUNDED): _Move(S.REFUNDED),
    (S.REFUND_FAILED, E.PAYMENT_REFUND_FAILED): _DUPLICATE,
    (S.REFUND_FAILED, E.DELIVERY_SCHEDULED): _ALREADY_CANCELLED,
    (S.REFUND_FAILED, E.OUT_OF_STOCK): _ALREADY_CANCELLED,
    (S.REFUND_FAILED, E.CANCEL_REQUESTED): _ALREADY_CANCELLED,
    (S.REFUND_FAILED, E.DEADLINE_EXPIRED): _ALREADY_CANCELLED,
    (S.REFUND_FAILED, E.PAYMENT_COMPLETED): _DUPLICATE,
    (S.REFUNDED, E.PAYMENT_REFUNDED): _DUPLICATE,
    (S.REFUNDED, E.DELIVERY_SCHEDULED): _ALREADY_CANCELLED,
    (S.REFUNDED, E.OUT_OF_STOCK): _ALREADY_CANCELLED,
    (S.REFUNDED, E.CANCEL_REQUESTED): _ALREADY_CANCELLED,
    (S.REFUNDED, E.DEADLINE_EXPIRED): _ALREADY_CANCELLED,
    (S.REFUNDED, E.PAYMENT_COMPLETED): _DUPLICATE,
}


def decide(status: OrderStatus | str | None, event: SagaInput) -> Decision:
    """What the saga does when `event` reaches an order in `status` (None: no order exists yet)."""
    current = OrderStatus(status) if status is not None else None
    rule = _RULES.get((current, event))
    if isinstance(rule, _Move):
        return Decision(Outcome.APPLIED, rule.to, rule.emits)
    if isinstance(rule, _Ignore):
        return Decision(Outcome.IGNORED, current, reason=rule.why)
    if isinstance(rule, _Reject):
        return Decision(Outcome.REJECTED, current, reason=rule.why)
    where = "an order that does not exist" if current is None else f"an order in {current.value}"
    return Decision(Outcome.REJECTED, current, reason=f"illegal: {event.value} for {where}")


_AWAITING: dict[OrderStatus, str] = {
    OrderStatus.PLACED: "delivery's answer to OrderPlaced (DeliveryScheduled or OutOfStock), or the deadline",
    OrderStatus.SCHEDULED: "the carrier: Shipped from delivery",
    OrderStatus.SHIPPED: "the carrier: Delivered from delivery",
    OrderStatus.CANCELLED: "payment's refund: PaymentRefunded",
    OrderStatus.REFUND_FAILED: "an operator: the refund failed for good and must be retried in payment",
}


def awaiting(status: OrderStatus | str) -> str | None:
    """What a saga in `status` is waiting for before it can move on; None once it is terminal."""
    return _AWAITING.get(OrderStatus(status))
