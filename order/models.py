"""The order service's tables: orders (the saga state) and their timeline (the saga log)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Computed, DateTime, Index, Table, Text, Uuid, func, text

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
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_orders_status_updated", "status", "updated_at"),
    # A shop's list and an operator's, newest first, read by seeking these (keyset pages).
    Index("ix_orders_owner_created", "owner", "created_at", "order_id"),
    Index("ix_orders_created", "created_at", "order_id"),
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
