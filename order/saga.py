"""The order saga as a pure state machine: (status, input) → decision. No I/O, no clock, no database.

Statuses, in the order a saga moves through them:

    (none) ─PaymentCompleted→ PLACED ─DeliveryScheduled→ SCHEDULED ─Shipped→ SHIPPED ─Delivered→ COMPLETED
    (none) ─PaymentFailed→ REJECTED
    PLACED ─OutOfStock→ CANCELLED                                        (emits OrderCancelled)
    PLACED | SCHEDULED ─CancelRequested | DeadlineExpired→ CANCELLING    (emits OrderCancellationRequested)
    CANCELLING ─CancellationConfirmed | OutOfStock→ CANCELLED            (emits OrderCancelled)
    CANCELLING ─Shipped→ SHIPPED   (the parcel left first; delivery refuses the cancel: CancellationRefused)
    CANCELLED ─PaymentRefunded→ REFUNDED
    CANCELLED ─PaymentRefundFailed→ REFUND_FAILED ─PaymentRefunded→ REFUNDED

Shipping is the pivot: the one step that cannot be undone, and only delivery, which owns the shipment,
knows whether it has happened. The order's copy of the shipment's state can be seconds old, so the order
never cancels on its own: a customer cancel or an expired deadline makes it CANCELLING and asks delivery.
Delivery releases the reservation and confirms, or refuses because the parcel shipped; only a confirmed
cancel (or an OutOfStock, which delivery decided itself) emits OrderCancelled, which payment refunds.

Every input gets one of three outcomes:
- APPLIED: the status, the cancellation's state and/or events emitted change;
- IGNORED: legal but without effect — a duplicate of what got us here, or a late event the saga has
  already moved past (delivery's answer to an order that was cancelled meanwhile);
- REJECTED: illegal (e.g. Delivered before Shipped, a cancel after shipment); the caller records it on
  the order's timeline and never applies it.

Every status is declared once, in `declared_standing`: what a saga in it waits for (or that it has
ended) and whether the customer may ask to cancel. It is a `match` naming every status and ending in
`assert_never`, so a status added to `OrderStatus` without its declaration fails mypy, and fails on import.
`tests/unit/test_saga_transitions.py` checks the rules against the declarations: every status is
reachable, every status under way has a rule leading out of it, an ended one has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import assert_never

from common.config import Service
from common.events.delivery import (
    CancellationConfirmed,
    CancellationRefused,
    Delivered,
    DeliveryScheduled,
    OutOfStock,
    Shipped,
)
from common.events.order import OrderCancellationRequested, OrderCancelled
from common.events.payment import PaymentCompleted, PaymentFailed, PaymentRefunded, PaymentRefundFailed
from common.events.values import Frozen


class OrderStatus(StrEnum):
    PLACED = "PLACED"
    SCHEDULED = "SCHEDULED"
    CANCELLING = "CANCELLING"  # asked delivery to cancel; waiting for its answer
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
    CANCELLATION_CONFIRMED = "CANCELLATION_CONFIRMED"  # delivery: nothing will ship, reservation released
    CANCELLATION_REFUSED = "CANCELLATION_REFUSED"  # delivery: too late, the parcel has shipped
    CANCEL_REQUESTED = "CANCEL_REQUESTED"  # the customer, through the HTTP API
    DEADLINE_EXPIRED = "DEADLINE_EXPIRED"  # delivery did not answer OrderPlaced in time


class Emit(StrEnum):
    ORDER_PLACED = "ORDER_PLACED"
    ORDER_CANCELLATION_REQUESTED = "ORDER_CANCELLATION_REQUESTED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    ORDER_COMPLETED = "ORDER_COMPLETED"


class CancelReason(StrEnum):
    OUT_OF_STOCK = "out_of_stock"
    CUSTOMER = "customer"
    TIMEOUT = "timeout"


class Cancellation(StrEnum):
    """Where a requested cancel stands (an order nobody asked to cancel has none)."""

    REQUESTED = "requested"  # delivery has been asked and has not answered yet
    CONFIRMED = "confirmed"  # nothing will ship: the money goes back
    REFUSED = "refused"  # the parcel had already shipped: the order completes, the money is kept


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Emission:
    """An event the saga emits. For ORDER_CANCELLED after a confirmed cancel, `reason` is None: the
    order is cancelled for the reason its cancellation was requested with."""

    kind: Emit
    reason: CancelReason | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    new_status: OrderStatus | None
    emits: tuple[Emission, ...] = ()
    reason: str = ""
    cancellation: Cancellation | None = None  # the cancellation's new state; None: unchanged


def declared_source(saga_input: SagaInput) -> type[Frozen] | None:
    """Where each input comes from: the event another service sent (its payload type, on a topic order
    consumes), or None for the inputs the order service makes itself (the customer's cancel through the
    HTTP API, the deadline timer). `order/handlers.py` (`INPUT_OF`) maps each event to its input from here.
    """
    match saga_input:
        case SagaInput.PAYMENT_COMPLETED:
            return PaymentCompleted
        case SagaInput.PAYMENT_FAILED:
            return PaymentFailed
        case SagaInput.PAYMENT_REFUNDED:
            return PaymentRefunded
        case SagaInput.PAYMENT_REFUND_FAILED:
            return PaymentRefundFailed
        case SagaInput.DELIVERY_SCHEDULED:
            return DeliveryScheduled
        case SagaInput.OUT_OF_STOCK:
            return OutOfStock
        case SagaInput.SHIPPED:
            return Shipped
        case SagaInput.DELIVERED:
            return Delivered
        case SagaInput.CANCELLATION_CONFIRMED:
            return CancellationConfirmed
        case SagaInput.CANCELLATION_REFUSED:
            return CancellationRefused
        case SagaInput.CANCEL_REQUESTED | SagaInput.DEADLINE_EXPIRED:
            return None
        case _:
            assert_never(saga_input)


# Built on import, like `STANDINGS` below: an input without a declared source stops every test.
SOURCES: Mapping[SagaInput, type[Frozen] | None] = MappingProxyType(
    {saga_input: declared_source(saga_input) for saga_input in SagaInput}
)
# The inputs the order service makes itself; every other input is an event another service sent.
OWN_INPUTS = frozenset(saga_input for saga_input, source in SOURCES.items() if source is None)


@dataclass(frozen=True)
class Waits:
    """A saga under way: what it waits for before it can move on, and whether the customer may ask to
    cancel it."""

    for_what: str
    cancellable: bool


@dataclass(frozen=True)
class Ended:
    """A terminal status: the saga never changes status again, waits for nothing and cannot be cancelled."""


def declared_standing(status: OrderStatus) -> Waits | Ended:
    """Every status: what a saga in it waits for, or that it has ended.

    The customer may ask to cancel until the order service knows the parcel shipped (delivery, which
    knows for sure, has the last word); asking again while a cancellation is under way is harmless.
    """
    match status:
        case OrderStatus.PLACED:
            return Waits(
                "delivery's answer to OrderPlaced (DeliveryScheduled or OutOfStock), or the deadline",
                cancellable=True,
            )
        case OrderStatus.SCHEDULED:
            return Waits("the carrier: Shipped from delivery", cancellable=True)
        case OrderStatus.CANCELLING:
            return Waits(
                "delivery's answer to the cancellation (CancellationConfirmed, or CancellationRefused if"
                " shipped)",
                cancellable=True,
            )
        case OrderStatus.SHIPPED:
            return Waits("the carrier: Delivered from delivery", cancellable=False)
        case OrderStatus.CANCELLED:
            return Waits("payment's refund: PaymentRefunded", cancellable=False)
        case OrderStatus.REFUND_FAILED:
            return Waits(
                "an operator: the refund failed for good and must be retried in payment", cancellable=False
            )
        case OrderStatus.COMPLETED | OrderStatus.REJECTED | OrderStatus.REFUNDED:
            return Ended()
        case _:
            assert_never(status)


# Built on import: a status without a declaration stops the service (and every test) from starting.
STANDINGS: Mapping[OrderStatus, Waits | Ended] = MappingProxyType(
    {status: declared_standing(status) for status in OrderStatus}
)
TERMINAL_STATUSES = frozenset(status for status, standing in STANDINGS.items() if isinstance(standing, Ended))


def is_terminal(status: OrderStatus | None) -> bool:
    """A terminal saga never changes status again."""
    return status in TERMINAL_STATUSES


def can_cancel(status: OrderStatus | None) -> bool:
    """Whether the customer may ask to cancel an order in `status` (None: no order yet), as declared."""
    if status is None:
        return False
    standing = STANDINGS[status]
    return isinstance(standing, Waits) and standing.cancellable


def awaiting(status: OrderStatus | str) -> str | None:
    """What a saga in `status` is waiting for before it can move on; None once it is terminal."""
    standing = STANDINGS[OrderStatus(status)]
    return standing.for_what if isinstance(standing, Waits) else None


@dataclass(frozen=True)
class _Move:
    to: OrderStatus
    emits: tuple[Emission, ...] = ()
    cancellation: Cancellation | None = None


@dataclass(frozen=True)
class _Ignore:
    why: str


@dataclass(frozen=True)
class _Reject:
    why: str


def _ask_delivery(reason: CancelReason) -> _Move:
    """Cancel requested: only delivery can tell whether the parcel has left."""
    return _Move(
        OrderStatus.CANCELLING,
        (Emission(Emit.ORDER_CANCELLATION_REQUESTED, reason),),
        Cancellation.REQUESTED,
    )


def _cancel(reason: CancelReason | None, cancellation: Cancellation | None = None) -> _Move:
    """Delivery has decided that nothing will ship: the order is cancelled and payment refunds."""
    return _Move(OrderStatus.CANCELLED, (Emission(Emit.ORDER_CANCELLED, reason),), cancellation)


S, E = OrderStatus, SagaInput
_DUPLICATE = _Ignore("duplicate: the saga has already moved past this event")
_ALREADY_CANCELLED = _Ignore("the order is already cancelled")
_TOO_LATE = _Reject("too late to cancel: the order has already shipped")
_REFUSED = _Move(S.SHIPPED, cancellation=Cancellation.REFUSED)

# Every legal pair; anything not listed is rejected as illegal.
_RULES: dict[tuple[OrderStatus | None, SagaInput], _Move | _Ignore | _Reject] = {
    (None, E.PAYMENT_COMPLETED): _Move(S.PLACED, (Emission(Emit.ORDER_PLACED),)),
    (None, E.PAYMENT_FAILED): _Move(S.REJECTED),
    # Waiting for delivery's answer.
    (S.PLACED, E.DELIVERY_SCHEDULED): _Move(S.SCHEDULED),
    (S.PLACED, E.OUT_OF_STOCK): _cancel(CancelReason.OUT_OF_STOCK),
    (S.PLACED, E.CANCEL_REQUESTED): _ask_delivery(CancelReason.CUSTOMER),
    (S.PLACED, E.DEADLINE_EXPIRED): _ask_delivery(CancelReason.TIMEOUT),
    (S.PLACED, E.PAYMENT_COMPLETED): _DUPLICATE,
    # Reserved, waiting for the carrier.
    (S.SCHEDULED, E.SHIPPED): _Move(S.SHIPPED),
    (S.SCHEDULED, E.CANCEL_REQUESTED): _ask_delivery(CancelReason.CUSTOMER),
    (S.SCHEDULED, E.DEADLINE_EXPIRED): _Ignore("delivery has answered; the deadline no longer applies"),
    (S.SCHEDULED, E.DELIVERY_SCHEDULED): _DUPLICATE,
    (S.SCHEDULED, E.PAYMENT_COMPLETED): _DUPLICATE,
    # Delivery has been asked to cancel: its answer decides. Its earlier events may still arrive first.
    (S.CANCELLING, E.CANCELLATION_CONFIRMED): _cancel(None, Cancellation.CONFIRMED),
    (S.CANCELLING, E.OUT_OF_STOCK): _cancel(CancelReason.OUT_OF_STOCK, Cancellation.CONFIRMED),
    (S.CANCELLING, E.SHIPPED): _Move(S.SHIPPED),  # the parcel left first: delivery will refuse the cancel
    (S.CANCELLING, E.DELIVERY_SCHEDULED): _Ignore("a cancellation is under way; delivery's answer decides"),
    (S.CANCELLING, E.CANCEL_REQUESTED): _Ignore("a cancellation is already under way"),
    (S.CANCELLING, E.DEADLINE_EXPIRED): _Ignore("a cancellation is already under way"),
    (S.CANCELLING, E.PAYMENT_COMPLETED): _DUPLICATE,
    # On its way.
    (S.SHIPPED, E.DELIVERED): _Move(S.COMPLETED, (Emission(Emit.ORDER_COMPLETED),)),
    (S.SHIPPED, E.CANCELLATION_REFUSED): _REFUSED,
    (S.SHIPPED, E.CANCEL_REQUESTED): _TOO_LATE,
    (S.SHIPPED, E.DEADLINE_EXPIRED): _DUPLICATE,
    (S.SHIPPED, E.DELIVERY_SCHEDULED): _DUPLICATE,
    (S.SHIPPED, E.SHIPPED): _DUPLICATE,
    (S.SHIPPED, E.PAYMENT_COMPLETED): _DUPLICATE,
    (S.COMPLETED, E.CANCELLATION_REFUSED): _Move(S.COMPLETED, cancellation=Cancellation.REFUSED),
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
    (S.REFUND_FAILED, E.PAYMENT_REFUNDED): _Move(S.REFUNDED),
    (S.REFUND_FAILED, E.PAYMENT_REFUND_FAILED): _DUPLICATE,
    (S.REFUNDED, E.PAYMENT_REFUNDED): _DUPLICATE,
    **{
        (status, event): _ALREADY_CANCELLED
        for status in (S.CANCELLED, S.REFUND_FAILED, S.REFUNDED)
        for event in (
            E.DELIVERY_SCHEDULED,
            E.OUT_OF_STOCK,
            E.CANCELLATION_CONFIRMED,  # after an OutOfStock crossed the request
            E.CANCEL_REQUESTED,
            E.DEADLINE_EXPIRED,
        )
    },
    **{(status, E.PAYMENT_COMPLETED): _DUPLICATE for status in (S.CANCELLED, S.REFUND_FAILED, S.REFUNDED)},
}

# The inputs that create an order: those with a rule from no order at all.
CREATING_INPUTS = frozenset(
    saga_input for (status, saga_input), rule in _RULES.items() if status is None and isinstance(rule, _Move)
)


@dataclass(frozen=True)
class Compensation:
    """What one service does when the saga emits a compensating event: its handler of the event (its
    `handlers.HANDLERS`) undoes `undoes`, and the service tells the saga how it went with one of
    `answers` (from the handler, or from the work it queues; none: the saga waits for nothing from it)."""

    service: Service
    undoes: str
    answers: tuple[type[Frozen], ...] = ()


@dataclass(frozen=True)
class Compensating:
    """A compensating event the saga emits (its payload type, on the `order` topic) and every service
    that acts on it."""

    event: type[Frozen]
    by: tuple[Compensation, ...]


# Which service undoes what when an order is cancelled, next to the rules that trigger it.
# `tests/unit/test_compensations.py` checks it against the services' handler tables and the catalogue.
COMPENSATIONS: Mapping[Emit, Compensating] = MappingProxyType(
    {
        Emit.ORDER_CANCELLATION_REQUESTED: Compensating(
            OrderCancellationRequested,
            by=(
                Compensation(
                    Service.DELIVERY,
                    "releases the reservation and confirms; refuses if the parcel has shipped (nothing is"
                    " undone then, the order completes)",
                    answers=(CancellationConfirmed, CancellationRefused),
                ),
            ),
        ),
        Emit.ORDER_CANCELLED: Compensating(
            OrderCancelled,
            by=(
                Compensation(
                    Service.PAYMENT,
                    "refunds the full charge, once (the refund worker calls the gateway)",
                    answers=(PaymentRefunded, PaymentRefundFailed),
                ),
                Compensation(
                    Service.DELIVERY,
                    "releases a reservation it still holds (OrderCancelled events written before delivery"
                    " confirmed every cancel); normally nothing is held any more",
                ),
            ),
        ),
    }
)


def decide(status: OrderStatus | str | None, event: SagaInput) -> Decision:
    """What the saga does when `event` reaches an order in `status` (None: no order exists yet)."""
    current = OrderStatus(status) if status is not None else None
    rule = _RULES.get((current, event))
    if isinstance(rule, _Move):
        return Decision(Outcome.APPLIED, rule.to, rule.emits, cancellation=rule.cancellation)
    if isinstance(rule, _Ignore):
        return Decision(Outcome.IGNORED, current, reason=rule.why)
    if isinstance(rule, _Reject):
        return Decision(Outcome.REJECTED, current, reason=rule.why)
    where = "an order that does not exist" if current is None else f"an order in {current.value}"
    return Decision(Outcome.REJECTED, current, reason=f"illegal: {event.value} for {where}")


# The inputs of a saga that goes well, in order: paid, reserved, then each of the carrier's steps.
HAPPY_INPUTS = (
    SagaInput.PAYMENT_COMPLETED,
    SagaInput.DELIVERY_SCHEDULED,
    SagaInput.SHIPPED,
    SagaInput.DELIVERED,
)


def happy_path() -> tuple[OrderStatus, ...]:
    """The statuses a saga that goes well moves through, PLACED to COMPLETED, as `decide` takes it along
    `HAPPY_INPUTS` (the console draws it ahead of a saga under way)."""
    statuses: list[OrderStatus] = []
    for saga_input in HAPPY_INPUTS:
        decision = decide(statuses[-1] if statuses else None, saga_input)
        if decision.outcome is not Outcome.APPLIED or decision.new_status is None:
            raise ValueError(f"{saga_input.value} does not move a saga along its happy path: {decision}")
        statuses.append(decision.new_status)
    return tuple(statuses)
