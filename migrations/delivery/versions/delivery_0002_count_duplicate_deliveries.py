"""count duplicate deliveries

Revision ID: delivery_0002
Revises: delivery_0001
Create Date: 2026-11-24 14:14:59.455691
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'delivery_0002'
down_revision: str | None = 'delivery_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consumer_counters',
    sa.Column('consumer', sa.Text(), nullable=False),
    sa.Column('duplicates', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('consumer', name=op.f('pk_consumer_counters'))
    )


def downgrade() -> None:
    op.drop_table('consumer_counters')
