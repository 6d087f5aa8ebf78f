"""The order service's answers, as its OpenAPI document declares them and its views send them.

Each answer is built in one place: an order from its row (`OrderAnswer.from_row`), a timeline entry from
its row, an order payment accepted and the order service has not recorded yet from what payment knows
(`OrderDetail.accepted`). The reads (`order/queries.py`) and the cancel (`order/cancel.py`) return these
models; the views send them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import Row

from common.events.values import Money, OrderLine
from common.tenancy import order_id_of, owner_of
from order.payment_lookup import AcceptedCheckout
from order.saga import Cancellation, OrderStatus, Outcome, awaiting

# An order payment accepted and the order service has not recorded yet.
Accepted = Literal["ACCEPTED"]
ACCEPTED: Accepted = "ACCEPTED"

_CANCELLATION_DETAIL = {
    Cancellation.REQUESTED: "waiting for delivery to confirm that nothing has shipped",
    Cancellation.CONFIRMED: "confirmed by delivery: nothing will ship, the payment is refunded",
    Cancellation.REFUSED: "cancel refused: already shipped",
}


class CancellationAnswer(BaseModel):
    """Where a requested cancel stands: delivery decides, since only it knows whether the parcel left."""

    status: Cancellation = Field(description="requested (delivery asked), confirmed (refunded), refused")
    reason: str | None = Field(description="customer or timeout (out_of_stock if delivery found none)")
    detail: str

    @classmethod
    def of(cls, state: Cancellation | str | None, reason: str | None) -> CancellationAnswer | None:
        """Where a requested cancel stands, in words a shop can show; None if nobody asked to cancel."""
        if state is None:
            return None
        cancellation = Cancellation(state)
        return cls(status=cancellation, reason=reason, detail=_CANCELLATION_DETAIL[cancellation])


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

    @staticmethod
    def from_row(row: Row[Any]) -> OrderAnswer:
        """A recorded order (a row of `orders`): its saga id split into the shop's id and the shop, what
        it waits for as its status declares (`order.saga.awaiting`)."""
        return OrderAnswer(
            order_id=order_id_of(row.order_id),
            owner=owner_of(row.order_id),
            status=row.status,
            payment_id=row.payment_id,
            customer_id=row.customer_id,
            amount=Money(amount_minor=row.amount_minor, currency=row.currency),
            lines=row.lines,
            cancel_reason=row.cancel_reason,
            cancellation=CancellationAnswer.of(row.cancellation, row.cancel_reason),
            waiting_for=awaiting(row.status),
            deadline_at=row.deadline_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class TimelineEntry(BaseModel):
    at: datetime
    kind: str = Field(description="received, emitted, requested, rejected or ignored")
    event_type: str
    event_id: UUID | None
    status_before: OrderStatus | None
    status_after: OrderStatus | None
    detail: str | None

    @staticmethod
    def from_row(row: Row[Any]) -> TimelineEntry:
        """An entry of the order's timeline (a row of `order_timeline`)."""
        return TimelineEntry.model_validate(row, from_attributes=True)


class OrderDetail(OrderAnswer):
    timeline: list[TimelineEntry] = Field(description="every event received, emitted, ignored or rejected")

    @staticmethod
    def recorded(order: Row[Any], timeline: Iterable[Row[Any]]) -> OrderDetail:
        """A recorded order with its timeline, in the order given."""
        return OrderDetail(
            **dict(OrderAnswer.from_row(order)), timeline=[TimelineEntry.from_row(e) for e in timeline]
        )

    @staticmethod
    def accepted(checkout: AcceptedCheckout, *, cancel_requested: bool) -> OrderDetail:
        """An order payment accepted and the order service has not recorded yet, as payment knows it: no
        timeline yet, and a cancel the customer already asked for is kept until the order exists."""
        reason = "customer" if cancel_requested else None
        return OrderDetail(
            order_id=checkout.order_id,
            owner=checkout.owner,
            status=ACCEPTED,
            payment_id=UUID(checkout.payment_id),
            customer_id=checkout.customer_id,
            amount=Money.model_validate(checkout.amount),
            lines=[OrderLine.model_validate(line) for line in checkout.lines],
            cancel_reason=reason,
            cancellation=CancellationAnswer.of(Cancellation.REQUESTED if cancel_requested else None, reason),
            waiting_for="the order service to record the payment (PaymentCompleted or PaymentFailed)",
            deadline_at=None,
            created_at=datetime.fromisoformat(checkout.created_at),
            updated_at=datetime.fromisoformat(checkout.created_at),
            timeline=[],
        )


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

    @staticmethod
    def of(
        saga_id: str,
        status: OrderStatus | Accepted,
        cancellation: Cancellation | None,
        outcome: Outcome,
    ) -> CancelAnswer:
        """The answer to a cancel of the order `saga_id` (`owner:order_id`)."""
        return CancelAnswer(
            order_id=order_id_of(saga_id),
            owner=owner_of(saga_id),
            status=status,
            cancellation=cancellation,
            outcome=outcome,
        )
