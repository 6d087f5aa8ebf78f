"""an order keeps when its checkout was answered, and the orders are searchable by customer

Revision ID: order_0007
Revises: order_0006
Create Date: 2026-12-06 20:00:00.000000

`checkout_at` is the occurred_at of the payment event that created the order (payment's answer to the
checkout): a saga's duration, from the checkout to its final status, is measured from it
(`saga_duration_seconds`). Orders recorded before keep NULL and are not measured. The index serves the
operators' search by customer, newest first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'order_0007'
down_revision: str | None = 'order_0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("checkout_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_orders_customer_created", "orders", ["customer_id", "created_at", "order_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_orders_customer_created", table_name="orders")
    op.drop_column("orders", "checkout_at")
