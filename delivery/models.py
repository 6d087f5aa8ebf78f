"""The delivery service's tables: stock per SKU and one shipment (reservation) per order."""

from __future__ import annotations

from sqlalchemy import JSON, CheckConstraint, Column, DateTime, Index, Integer, Table, Text, func, text

from common.db import new_metadata
from common.messaging.tables import define_messaging_tables
from delivery.lifecycle import STEPS

metadata = new_metadata()
messaging = define_messaging_tables(metadata)

stock = Table(
    "stock",
    metadata,
    Column("sku", Text, primary_key=True),
    Column("on_hand", Integer, nullable=False),  # available to reserve
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("shipped", Integer, nullable=False, server_default="0"),
    # Everything ever put on the shelf, so "on_hand + reserved + shipped == stocked" can be checked.
    Column("stocked", Integer, nullable=False),
    Column("updated_by", Text),  # the operator who last counted it (reservations are the saga's)
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("shipped >= 0", name="shipped_not_negative"),
    CheckConstraint("on_hand + reserved + shipped = stocked", name="stock_conserved"),
)

# The statuses the auto-progress sweep looks in: those its steps start from, in the carrier's order.
SWEPT = tuple(rules.required for rules in STEPS.values() if rules.auto_progress)

shipments = Table(
    "shipments",
    metadata,
    # One shipment per order: the business-level guard against reserving twice.
    Column("order_id", Text, primary_key=True),
    # A status of `delivery/lifecycle.py`: SCHEDULED, the steps' (up to DELIVERED), RELEASED, OUT_OF_STOCK, …
    Column("status", Text, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("shipping_address", JSON),
    Column("short", JSON),
    Column("tracking_code", Text),
    # Who made each carrier step (its declared `made_by` column): a carrier key's name, or `auto-progress`.
    *(Column(rules.made_by, Text) for rules in STEPS.values()),
    # The trace of the OrderPlaced that made it (common/tracing.py): the carrier's steps continue it.
    Column("trace_context", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The auto-progress sweep runs every few tens of milliseconds and only wants shipments still moving;
    # without this it would scan every shipment ever made.
    Index(
        "ix_shipments_in_transit_updated",
        "updated_at",
        postgresql_where=text(f"status IN ({', '.join(repr(status.value) for status in SWEPT)})"),
    ),
)
