"""traces: each outbox row keeps the trace context of the span that wrote it

Revision ID: payment_0004
Revises: payment_0003
Create Date: 2026-12-06 17:00:00.000000

One trace per saga (common/tracing.py): the outbox keeps each event's trace context for the
relay to publish in the `traceparent` header, and a refund keeps the trace of the cancel that queued it,
which the refund worker continues.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'payment_0004'
down_revision: str | None = 'payment_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, why): each keeps the W3C `traceparent` of the span that wrote the row, NULL when traces are off.
TRACED = ['outbox', 'refunds']


def upgrade() -> None:
    for table in TRACED:
        op.add_column(table, sa.Column("trace_context", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in reversed(TRACED):
        op.drop_column(table, "trace_context")
