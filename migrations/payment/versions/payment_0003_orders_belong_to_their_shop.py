"""orders belong to their shop: saga ids are owner:order_id; who retried a refund, who resolved a letter

Revision ID: payment_0003
Revises: payment_0002
Create Date: 2026-12-06 05:00:00.000000

Every order id becomes a saga id, `owner:order_id` (common/tenancy.py). Rows made before owners existed
get the owner `legacy` (the same owner the services give an event that names none), so a rebuild or a
replay of old events meets the same ids. The stored checkout answers keep the order id the shop knows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'payment_0003'
down_revision: str | None = 'payment_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY = "legacy:"
# Every column that names an order (the outbox's and the dead letters' keys are order ids too).
ORDER_COLUMNS = [
    ("payments", "order_id"),
    ("refunds", "order_id"),
    ("checkout_requests", "order_id"),
    ("processed_events", "order_id"),
    ("outbox", "key"),
    ("dead_letters", "order_id"),
    ("dead_letters", "key"),
]


def upgrade() -> None:
    for table, column in ORDER_COLUMNS:
        op.execute(
            f"UPDATE {table} SET {column} = '{LEGACY}' || {column}"
            f" WHERE {column} IS NOT NULL AND strpos({column}, ':') = 0"
        )
    op.add_column('refunds', sa.Column('retried_by', sa.Text(), nullable=True))
    op.add_column('dead_letters', sa.Column('resolved_by', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('dead_letters', 'resolved_by')
    op.drop_column('refunds', 'retried_by')
    for table, column in ORDER_COLUMNS:
        op.execute(
            f"UPDATE {table} SET {column} = substr({column}, {len(LEGACY) + 1})"
            f" WHERE {column} LIKE '{LEGACY}%'"
        )
