"""The three messaging tables every service database has (README: reliability model).

- `outbox`: events a handler emitted, written in the handler's own transaction, published by the relay.
- `processed_events` (the inbox): `(consumer, event_id)` of every event whose effect was committed, so a
  redelivered event is recognised and does nothing.
- `dead_letters`: messages that can never be processed as they are, with the raw bytes and the reason,
  plus later events of the same order parked behind them to keep that order's events in sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    func,
    text,
)


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table
    dead_letters: Table
    counters: Table


def define_messaging_tables(metadata: MetaData) -> MessagingTables:
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("event_type", Text, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        # The `traceparent` of the span that wrote the event (common/tracing.py), NULL when traces are off.
        Column("trace_context", Text),
        # The relay only ever looks for unpublished rows; keep that scan small.
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )
    inbox = Table(
        "processed_events",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("order_id", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
        Index("ix_processed_events_processed_at", "processed_at"),
    )
    dead_letters = Table(
        "dead_letters",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("consumer", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("key", Text),
        Column("order_id", Text),
        Column("event_id", Uuid),
        Column("event_type", Text),
        Column("value", LargeBinary),
        Column("error", Text, nullable=False),
        # parked → (retried: processed again | discarded by an operator)
        Column("status", Text, nullable=False, server_default="parked"),
        Column("blocked_by", BigInteger),
        Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("resolved_at", DateTime(timezone=True)),
        Column("resolved_by", Text),  # the operator who retried or discarded it
        Index(
            "ix_dead_letters_parked_order", "consumer", "order_id", postgresql_where=text("status = 'parked'")
        ),
    )
    # Redeliveries are expected (Kafka is at-least-once) and counted here, durably, so operators and the
    # fault suite can see how many were absorbed by the inbox across restarts.
    counters = Table(
        "consumer_counters",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("duplicates", BigInteger, nullable=False, server_default="0"),
    )
    return MessagingTables(outbox=outbox, inbox=inbox, dead_letters=dead_letters, counters=counters)
