"""orders belong to their shop: saga ids are owner:order_id, listed by owner (keyset); who resolved a letter

Revision ID: order_0004
Revises: order_0003
Create Date: 2026-12-06 05:00:00.000000

Every order id becomes a saga id, `owner:order_id` (common/tenancy.py). Rows made before owners existed
get the owner `legacy` (the same owner the services give an event that names none), so `saga rebuild
order` and replays of old events meet the same ids. `owner` is computed from the id, for a shop's list.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'order_0004'
down_revision: str | None = 'order_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY = "legacy:"
# Every column that names an order (the outbox's and the dead letters' keys are order ids too).
ORDER_COLUMNS = [
    ("orders", "order_id"),
    ("order_timeline", "order_id"),
    ("early_cancels", "order_id"),
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
    op.add_column(
        'orders',
        sa.Column('owner', sa.Text(), sa.Computed("split_part(order_id, ':', 1)", persisted=True), nullable=False),
    )
    op.create_index('ix_orders_owner_created', 'orders', ['owner', 'created_at', 'order_id'], unique=False)
    op.create_index('ix_orders_created', 'orders', ['created_at', 'order_id'], unique=False)
    op.add_column('dead_letters', sa.Column('resolved_by', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('dead_letters', 'resolved_by')
    op.drop_index('ix_orders_created', table_name='orders')
    op.drop_index('ix_orders_owner_created', table_name='orders')
    op.drop_column('orders', 'owner')
    for table, column in ORDER_COLUMNS:
        op.execute(
            f"UPDATE {table} SET {column} = substr({column}, {len(LEGACY) + 1})"
            f" WHERE {column} LIKE '{LEGACY}%'"
        )
