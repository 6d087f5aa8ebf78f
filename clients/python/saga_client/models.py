"""The platform's answers (and the checkout request) as typed, immutable models.

They mirror the answer schemas of the services' OpenAPI documents (`/openapi.json`): same field names,
same required fields, same enums. The platform's test suite compares them with the documents, so an API
change that the client does not follow fails CI. Money is always integer minor units plus a currency.
Answers only grow by optional fields: a field the client does not know yet is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class Answer(BaseModel):
    """Base of every answer model: immutable, and tolerant of fields added by a newer platform."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class OrderStatus(StrEnum):
    """The saga's statuses. COMPLETED, REJECTED and REFUNDED are terminal; REFUND_FAILED waits for an
    operator (`retry_refund`)."""

    PLACED = "PLACED"
    SCHEDULED = "SCHEDULED"
    CANCELLING = "CANCELLING"
    SHIPPED = "SHIPPED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    REFUND_FAILED = "REFUND_FAILED"
    REFUNDED = "REFUNDED"


class WebhookEventType(StrEnum):
    """The shop event types of the webhooks, version 1 (`docs/shops/webhooks.md`, "The events"): one per
    status an order enters and per answer to a cancel. Next to `OrderStatus`, which a new status of the
    saga adds to as well; `saga_client.webhooks` reads the events that carry them."""

    ORDER_PLACED = "order.placed"
    ORDER_REJECTED = "order.rejected"
    ORDER_SCHEDULED = "order.scheduled"
    ORDER_SHIPPED = "order.shipped"
    ORDER_COMPLETED = "order.completed"
    ORDER_CANCELLATION_REQUESTED = "order.cancellation_requested"
    ORDER_CANCELLATION_CONFIRMED = "order.cancellation_confirmed"
    ORDER_CANCELLATION_REFUSED = "order.cancellation_refused"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_REFUNDED = "order.refunded"
    ORDER_REFUND_FAILED = "order.refund_failed"


# The status of an order payment accepted and the order service has not recorded yet (never a 404).
ACCEPTED: Literal["ACCEPTED"] = "ACCEPTED"
TERMINAL = frozenset({OrderStatus.COMPLETED, OrderStatus.REJECTED, OrderStatus.REFUNDED})
# Where a saga stops moving on its own: terminal, or a failed refund waiting for an operator.
SETTLED = TERMINAL | {OrderStatus.REFUND_FAILED}


class Cancellation(StrEnum):
    REQUESTED = "requested"  # delivery is asked and has not answered
    CONFIRMED = "confirmed"  # nothing will ship: the money goes back
    REFUSED = "refused"  # the parcel had shipped: the order completes, the money is kept


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"
    REJECTED = "rejected"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    REFUND_FAILED = "REFUND_FAILED"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ShipmentStatus(StrEnum):
    SCHEDULED = "SCHEDULED"  # stock reserved; then each carrier step's status (`CARRIER_STEPS`)
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RELEASED = "RELEASED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class CarrierStep:
    """One of the carrier's steps: its route (`POST /shipments/{order_id}/<name>`), the status it takes a
    parcel to, the shipment's field naming who made it, and what the parcel then holds of the stock."""

    name: str
    reached: ShipmentStatus
    made_by: str
    holds: Literal["reserved", "shipped"]  # "shipped": the parcel has left the warehouse


# The carrier's steps, in the order a parcel goes through them from SCHEDULED: the one table the client's
# calls, its test carrier and its checker read, so a step the platform adds is one line here (with its
# status above and its who-made-it field on `Shipment`, which the platform's CI compares with its API).
CARRIER_STEPS: tuple[CarrierStep, ...] = (
    CarrierStep("ship", ShipmentStatus.SHIPPED, "shipped_by", holds="shipped"),
    CarrierStep("deliver", ShipmentStatus.DELIVERED, "delivered_by", holds="shipped"),
)


class LetterStatus(StrEnum):
    PARKED = "parked"
    RETRIED = "retried"
    DISCARDED = "discarded"


class MessageOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    NOT_SUBSCRIBED = "not_subscribed"
    PARKED = "parked"
    PARKED_BEHIND = "parked_behind"


# -- what the shop sends -----------------------------------------------------------------------------


class Line(BaseModel):
    """A cart line: units of a SKU at a unit price in minor units (cents). Never a float."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str
    quantity: StrictInt
    unit_price_minor: StrictInt


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str = Field(description="ISO 3166-1 alpha-2, e.g. DE")


class CheckoutRequest(BaseModel):
    """The body of `POST /checkout`. The server validates it (422 `ValidationFailed` names the fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str | None = None
    customer_id: str
    lines: tuple[Line, ...]
    currency: str
    payment_method: str
    shipping_address: Address
    amount_minor: StrictInt | None = None


# -- what the platform answers -----------------------------------------------------------------------


class Money(Answer):
    amount_minor: int
    currency: str


class OrderLine(Answer):
    sku: str
    quantity: int
    unit_price_minor: int


class CheckoutResult(Answer):
    """The answer to a checkout, the same for every retry with its Idempotency-Key."""

    order_id: str
    payment_id: UUID
    status: PaymentStatus = Field(description="CAPTURED, DECLINED or FAILED (nothing charged)")
    decline_reason: str | None
    order_url: str


class Refund(Answer):
    refund_id: UUID
    status: RefundStatus
    reason: str
    amount: Money
    attempts: int
    last_error: str | None
    retried_by: str | None  # the operator who last queued it again
    updated_at: datetime


class Payment(Answer):
    payment_id: UUID
    order_id: str
    owner: str  # the shop whose order it is (its key's name)
    customer_id: str
    status: PaymentStatus
    amount: Money
    lines: list[OrderLine]
    failure_reason: str | None
    gateway_reference: str | None
    created_at: datetime
    updated_at: datetime
    refund: Refund | None


class RefundQueued(Answer):
    order_id: str
    owner: str  # the shop whose order it is (its key's name)
    refund_id: UUID
    status: RefundStatus


class CancellationState(Answer):
    """Where a requested cancel stands: delivery decides, since only it knows whether the parcel left."""

    status: Cancellation
    reason: str | None
    detail: str


class Order(Answer):
    """An order as the order service shows it (`status` ACCEPTED until it is recorded)."""

    order_id: str
    owner: str  # the shop whose order it is (its key's name)
    status: OrderStatus | Literal["ACCEPTED"]
    payment_id: UUID
    customer_id: str
    amount: Money
    lines: list[OrderLine]
    cancel_reason: str | None
    cancellation: CancellationState | None = None
    waiting_for: str | None
    deadline_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def settled(self) -> bool:
        """True once the saga stopped moving: terminal, or REFUND_FAILED (waiting for an operator)."""
        return self.status in SETTLED


class TimelineEntry(Answer):
    at: datetime
    kind: str
    event_type: str
    event_id: UUID | None
    status_before: OrderStatus | None
    status_after: OrderStatus | None
    detail: str | None


class OrderDetail(Order):
    timeline: list[TimelineEntry]

    def events(self, *kinds: str) -> list[str]:
        """The event types on the timeline, in order; only those of `kinds` (e.g. "emitted") if given."""
        return [entry.event_type for entry in self.timeline if not kinds or entry.kind in kinds]


class OrderPage(Answer):
    items: list[Order]
    total: int
    limit: int
    offset: int
    next_after: str | None  # the page's last order (owner:order_id): `after=` it for the next page


class CancelResult(Answer):
    order_id: str
    owner: str  # the shop whose order it is (its key's name)
    status: OrderStatus | Literal["ACCEPTED"]
    cancellation: Cancellation | None
    outcome: Outcome


class Stock(Answer):
    """A SKU's units: free on the shelf, reserved for scheduled shipments, shipped."""

    sku: str
    on_hand: int
    reserved: int
    shipped: int


class StockRow(Stock):
    stocked: int = Field(description="every unit ever stocked: on_hand + reserved + shipped")
    updated_by: str | None = Field(description="the operator who counted it last")


class StockList(Answer):
    items: list[StockRow]
    next_after: str | None  # the page's last SKU: `after=` it for the next page; None on the last


class StockSet(Answer):
    items: list[Stock]


class SkuShortage(Answer):
    sku: str
    requested: int
    available: int


class Shipment(Answer):
    order_id: str
    owner: str  # the shop whose order it is (its key's name)
    status: ShipmentStatus
    lines: list[OrderLine]
    short: list[SkuShortage] | None
    tracking_code: str | None
    shipped_by: str | None  # a carrier key's name, or auto-progress
    delivered_by: str | None
    created_at: datetime
    updated_at: datetime

    def made_by(self, step: CarrierStep) -> str | None:
        """Who made `step` (a carrier key's name, or auto-progress); None while it is not made."""
        made: str | None = getattr(self, step.made_by)
        return made


class DeadLetter(Answer):
    """A parked event, as Kafka delivered it, with why it was parked."""

    id: int
    consumer: str
    topic: str
    partition: int
    offset: int
    key: str | None
    order_id: str | None
    event_id: UUID | None
    event_type: str | None
    error: str
    status: LetterStatus
    blocked_by: int | None
    parked_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None  # the operator who retried or discarded it
    value: str | None


class DeadLetterPage(Answer):
    items: list[DeadLetter]
    limit: int
    offset: int


class RetryResult(Answer):
    id: int
    outcome: MessageOutcome


class RetryResults(Answer):
    results: list[RetryResult]


class Discarded(Answer):
    id: int
    status: LetterStatus


class Health(Answer):
    status: str
    service: str


class Readiness(Answer):
    ready: bool
    checks: dict[str, str]
    authentication: Literal["on", "off"]  # off: the platform runs without API keys (development only)


# -- webhooks (the order service's `/webhooks`; what they send is `saga_client.webhooks`) ----------------


class WebhookEndpoint(Answer):
    """An endpoint the platform POSTs a shop's order events to. `event_types` are those it is sent;
    `enabled` False with `disabled_reason` once it failed for days (or was disabled); `pending` is what
    waits to be sent to it; `secret_rotation_ends_at` when the previous secret stops signing."""

    id: UUID
    owner: str  # the shop whose orders it receives
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_by: str  # the key that registered it: the shop, or an operator
    created_at: datetime
    updated_at: datetime
    pending: int
    failing_since: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    secret_rotation_ends_at: datetime | None


class WebhookEndpointCreated(WebhookEndpoint):
    """The answer to creating an endpoint: the endpoint and its signing `secret`, shown this once (kept
    out of the repr, so that it reaches no log)."""

    secret: str = Field(repr=False)


class WebhookSecretRotated(WebhookEndpoint):
    """The answer to a rotation: the new `secret`, shown this once (kept out of the repr); the previous one
    still signs every request until `secret_rotation_ends_at`."""

    secret: str = Field(repr=False)


class WebhookEndpointList(Answer):
    items: list[WebhookEndpoint]


class WebhookAttempt(Answer):
    """One request to an endpoint: `status_code` None when there was no answer (`error` says why: a
    timeout, a refused connection); `delivered` when it was answered 2xx in time."""

    id: int
    event_id: UUID
    event_type: str | None  # None once the event is past the platform's retention
    order_id: str | None  # the order as `owner:order_id`
    sequence: int | None  # the event's place among its order's events
    attempt: int  # 1 for the first request of the event to this endpoint, then 2, 3, …
    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    delivered: bool


class WebhookAttemptList(Answer):
    items: list[WebhookAttempt]  # newest first
    next_before: int | None  # `before=` it for the next page; None on the last


class WebhookResent(Answer):
    queued: int  # events queued to be sent again


class WebhookDeleted(Answer):
    id: UUID
    deleted: bool


class FieldError(Answer):
    field: str
    message: str


class ErrorBody(Answer):
    """Every error answer (the exceptions of `saga_client.errors` carry it)."""

    error: str
    message: str
    fields: list[FieldError] | None = None
