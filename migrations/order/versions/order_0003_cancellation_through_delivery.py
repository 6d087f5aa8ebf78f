"""cancellation through delivery: the cancellation's state, and cancels sent before the order existed

Revision ID: order_0003
Revises: order_0002
Create Date: 2026-12-03 10:30:00.000000

Additive only. Orders cancelled before this revision (by the customer or the deadline, unilaterally) are
marked `confirmed`: delivery released them when it received their OrderCancelled, and `saga rebuild
order` replays such an old cancel as requested and then confirmed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'order_0003'
down_revision: str | None = 'order_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('cancellation', sa.Text(), nullable=True))
    op.execute(
        "UPDATE orders SET cancellation = 'confirmed'"
        " WHERE cancel_reason IN ('customer', 'timeout')"
        " AND status IN ('CANCELLED', 'REFUND_FAILED', 'REFUNDED')"
    )
    op.create_table('early_cancels',
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_early_cancels'))
    )


def downgrade() -> None:
    op.drop_table('early_cancels')
    op.drop_column('orders', 'cancellation')
