"""The order service's tables: orders (the saga state), their timeline (the saga log), and what their
shops are told (shop events, webhook endpoints, deliveries and attempts: order/webhooks)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from common.db import new_metadata
from common.messaging.tables import define_messaging_tables

metadata = new_metadata()
messaging = define_messaging_tables(metadata)

orders = Table(
    "orders",
    metadata,
    Column("order_id", Text, primary_key=True),  # the saga id, owner:order_id (common/tenancy.py)
    # The shop whose order it is, kept for listing one shop's orders.
    Column("owner", Text, Computed("split_part(order_id, ':', 1)", persisted=True), nullable=False),
    Column("payment_id", Uuid, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("shipping_address", JSON),
    # Why it was (or was asked to be) cancelled: out_of_stock, customer, timeout; a failed payment's reason.
    Column("cancel_reason", Text),
    # Where a requested cancel stands: requested, confirmed or refused by delivery (`saga.Cancellation`).
    Column("cancellation", Text),
    Column("deadline_at", DateTime(timezone=True)),
    # The trace of the payment event that created it (common/tracing.py): a cancel or a deadline continues it.
    Column("trace_context", Text),
    # When payment answered the checkout (the creating event's occurred_at): where the saga's duration
    # starts. NULL for orders recorded before it was kept.
    Column("checkout_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_orders_status_updated", "status", "updated_at"),
    # A shop's list and an operator's, newest first, read by seeking these (keyset pages).
    Index("ix_orders_owner_created", "owner", "created_at", "order_id"),
    Index("ix_orders_created", "created_at", "order_id"),
    # An operator's search by customer (every shop's, or one shop's), newest first.
    Index("ix_orders_customer_created", "customer_id", "created_at", "order_id"),
    # The deadline sweep only looks at orders still waiting for delivery's answer.
    Index("ix_orders_waiting_deadline", "deadline_at", postgresql_where=text("status = 'PLACED'")),
)

timeline = Table(
    "order_timeline",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", Text, nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # received | emitted | requested | rejected | ignored
    Column("kind", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_id", Uuid),
    Column("status_before", Text),
    Column("status_after", Text),
    Column("detail", Text),
)

# Cancels sent before the order service had seen the order, until the order is created
# (`order/early_cancels.py`).
early_cancels = Table(
    "early_cancels",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# What each shop is told about its orders, written in the transaction of the change (order/webhooks).
shop_events = Table(
    "shop_events",
    metadata,
    # md5('shop-event:' || order_id || ':' || seq): the same id wherever the same history is written
    # (a `saga rebuild order` gives every event the id it had).
    Column("event_id", Uuid, primary_key=True),
    Column("order_id", Text, nullable=False),  # the saga id
    Column("owner", Text, nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, 3… per order
    Column("type", Text, nullable=False),
    Column("order_snapshot", JSONB, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("order_id", "seq", name="uq_shop_events_order_seq"),
    # "Send again everything since…" reads one shop's events by time.
    Index("ix_shop_events_owner_occurred", "owner", "occurred_at"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner", Text, nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    # Kept as they are: the platform signs with them. Only this service's role reads this table.
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),  # still signs until previous_secret_expires_at (a rotation's overlap)
    Column("previous_secret_expires_at", DateTime(timezone=True)),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("failing_since", DateTime(timezone=True)),  # the first failure since the last success
    # Failures in a row, and the gate they set: nothing is sent before `next_attempt_at` (then a probe).
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_success_at", DateTime(timezone=True)),
    Column("last_failure_at", DateTime(timezone=True)),
    Column("last_error", Text),
)

# One row per (endpoint, event) to send. The head of an order's pending deliveries (its lowest seq) has
# a due time; the rest wait with none until the one before them is acknowledged.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("endpoint_id", Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("order_id", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Due at (NULL: behind an earlier event of the order); while an attempt is in flight, when it is
    # given up as lost (the sender died) and tried again.
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("delivered_at IS NULL")),
    Index(
        "ix_webhook_deliveries_pending_per_order",
        "endpoint_id",
        "order_id",
        "seq",
        postgresql_where=text("delivered_at IS NULL"),
    ),
    Index("ix_webhook_deliveries_delivered", "delivered_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("endpoint_id", Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),  # NULL: no answer (timeout, refused, reset)
    Column("latency_ms", Double),
    Column("error", Text),
    Column("delivered", Boolean, nullable=False),
    Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
    Index("ix_webhook_attempts_at", "at"),
)
