"""traces: each outbox row keeps the trace context of the span that wrote it

Revision ID: order_0006
Revises: order_0005
Create Date: 2026-12-06 17:00:00.000000

One trace per saga (common/tracing.py): the outbox keeps each event's trace context for the
relay to publish in the `traceparent` header, and an order keeps the trace of the payment event that
created it, which a cancel or an expired deadline continues.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'order_0006'
down_revision: str | None = 'order_0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, why): each keeps the W3C `traceparent` of the span that wrote the row, NULL when traces are off.
TRACED = ['outbox', 'orders']


def upgrade() -> None:
    for table in TRACED:
        op.add_column(table, sa.Column("trace_context", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in reversed(TRACED):
        op.drop_column(table, "trace_context")
