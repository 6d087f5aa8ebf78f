"""The payment service's tables: payments, refunds and checkout idempotency keys."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    Text,
    Uuid,
    func,
)

from common.db import new_metadata
from common.messaging.tables import define_messaging_tables

metadata = new_metadata()
messaging = define_messaging_tables(metadata)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", Uuid, primary_key=True),
    Column("order_id", Text, nullable=False, unique=True),  # one charge per order, ever
    Column("customer_id", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("payment_method", Text, nullable=False),
    # PENDING → CAPTURED | DECLINED | FAILED; CAPTURED → REFUNDED | REFUND_FAILED → REFUNDED
    Column("status", Text, nullable=False),
    Column("failure_reason", Text),
    Column("gateway_reference", Text),
    Column("lines", JSON, nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", Uuid, primary_key=True),
    # One refund per payment: the business-level guard against refunding twice.
    Column("payment_id", Uuid, ForeignKey("payments.payment_id"), nullable=False, unique=True),
    Column("order_id", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("reason", Text, nullable=False),
    # PENDING → SUCCEEDED | FAILED (after the retry limit; an operator may set it PENDING again)
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("retried_by", Text),  # the operator who last queued a failed refund again
    # The trace of the cancel that queued it (common/tracing.py): the refund worker continues it.
    Column("trace_context", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

checkout_requests = Table(
    "checkout_requests",
    metadata,
    Column("idempotency_key", Text, primary_key=True),
    Column("request_fingerprint", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("response_status", Integer),
    Column("response_body", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
