"""traces: each outbox row keeps the trace context of the span that wrote it

Revision ID: delivery_0005
Revises: delivery_0004
Create Date: 2026-12-06 17:00:00.000000

One trace per saga (common/tracing.py): the outbox keeps each event's trace context for the
relay to publish in the `traceparent` header, and a shipment keeps the trace of the order that placed it,
which the carrier's steps continue.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'delivery_0005'
down_revision: str | None = 'delivery_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, why): each keeps the W3C `traceparent` of the span that wrote the row, NULL when traces are off.
TRACED = ['outbox', 'shipments']


def upgrade() -> None:
    for table in TRACED:
        op.add_column(table, sa.Column("trace_context", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in reversed(TRACED):
        op.drop_column(table, "trace_context")
