"""create order tables, outbox, inbox and dead letters

Revision ID: order_0001
Revises: 
Create Date: 2026-11-24 13:41:23.188900
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'order_0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('consumer', sa.Text(), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.Text(), nullable=True),
    sa.Column('order_id', sa.Text(), nullable=True),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('event_type', sa.Text(), nullable=True),
    sa.Column('value', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='parked', nullable=False),
    sa.Column('blocked_by', sa.BigInteger(), nullable=True),
    sa.Column('parked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters'))
    )
    op.create_index('ix_dead_letters_parked_order', 'dead_letters', ['consumer', 'order_id'], unique=False, postgresql_where=sa.text("status = 'parked'"))
    op.create_table('order_timeline',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('status_before', sa.Text(), nullable=True),
    sa.Column('status_after', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_timeline'))
    )
    op.create_index(op.f('ix_order_timeline_order_id'), 'order_timeline', ['order_id'], unique=False)
    op.create_table('orders',
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('payment_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.Text(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('shipping_address', sa.JSON(), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_orders'))
    )
    op.create_index('ix_orders_status_updated', 'orders', ['status', 'updated_at'], unique=False)
    op.create_index('ix_orders_waiting_deadline', 'orders', ['deadline_at'], unique=False, postgresql_where=sa.text("status = 'PLACED'"))
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('value', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    op.create_index('ix_outbox_unpublished', 'outbox', ['id'], unique=False, postgresql_where=sa.text('published_at IS NULL'))
    op.create_table('processed_events',
    sa.Column('consumer', sa.Text(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('order_id', sa.Text(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_processed_events'))
    )
    op.create_index('ix_processed_events_processed_at', 'processed_events', ['processed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_processed_events_processed_at', table_name='processed_events')
    op.drop_table('processed_events')
    op.drop_index('ix_outbox_unpublished', table_name='outbox', postgresql_where=sa.text('published_at IS NULL'))
    op.drop_table('outbox')
    op.drop_index('ix_orders_waiting_deadline', table_name='orders', postgresql_where=sa.text("status = 'PLACED'"))
    op.drop_index('ix_orders_status_updated', table_name='orders')
    op.drop_table('orders')
    op.drop_index(op.f('ix_order_timeline_order_id'), table_name='order_timeline')
    op.drop_table('order_timeline')
    op.drop_index('ix_dead_letters_parked_order', table_name='dead_letters', postgresql_where=sa.text("status = 'parked'"))
    op.drop_table('dead_letters')
