"""index shipments in transit, for the auto-progress sweep

Revision ID: delivery_0003
Revises: delivery_0002
Create Date: 2026-11-27 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'delivery_0003'
down_revision: str | None = 'delivery_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_shipments_in_transit_updated',
        'shipments',
        ['updated_at'],
        unique=False,
        postgresql_where=sa.text("status IN ('SCHEDULED', 'SHIPPED')"),
    )


def downgrade() -> None:
    op.drop_index(
        'ix_shipments_in_transit_updated',
        table_name='shipments',
        postgresql_where=sa.text("status IN ('SCHEDULED', 'SHIPPED')"),
    )
