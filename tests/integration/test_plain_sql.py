"""Plain SQL on a real PostgreSQL: writes run together (all or nothing), and reads that keep what the
connection prepared."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import exc, text

from common import pg
from common.db import create_engine, reading
from common.events import new_envelope
from common.events.delivery import Delivered, Shipped
from common.messaging.outbox import enqueue_statement
from order.models import messaging as tables
from tests.integration.schemas import Db, order_schema


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with order_schema(database_urls["order"]) as schema:
        yield schema


def _claim(event_id: uuid.UUID) -> pg.Statement:
    return pg.Statement(
        f"INSERT INTO {tables.inbox.name} (consumer, event_id, event_type, order_id) VALUES (%s, %s, %s, %s)",
        ("test", event_id, "Shipped", "o-1"),
    )


async def test_writes_run_together_commit_with_the_transaction_and_keep_the_outbox_order(db: Db) -> None:
    events = [
        new_envelope(Shipped(tracking_code="T"), order_id="o-1", producer="test"),
        new_envelope(Delivered(), order_id="o-1", producer="test"),
    ]
    async with db.engine.begin() as conn:
        await pg.execute_together(
            conn, [enqueue_statement(tables.outbox, "order", events), _claim(events[0].event_id)]
        )

    async with db.engine.connect() as conn:
        outbox = (await conn.execute(text("SELECT event_type FROM outbox ORDER BY id"))).scalars().all()
        claimed = await conn.scalar(text("SELECT event_id FROM processed_events"))
    assert outbox == ["Shipped", "Delivered"]
    assert claimed == events[0].event_id


async def test_one_failing_write_leaves_none_of_the_writes_run_with_it(db: Db) -> None:
    event = new_envelope(Shipped(tracking_code="T"), order_id="o-1", producer="test")
    async with db.engine.begin() as conn:
        await pg.execute_together(conn, [_claim(event.event_id)])

    with pytest.raises(exc.IntegrityError):
        async with db.engine.begin() as conn:
            # The second claim of the same event violates the inbox's key.
            await pg.execute_together(
                conn, [enqueue_statement(tables.outbox, "order", [event]), _claim(event.event_id)]
            )

    async with db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM processed_events")) == 1


async def test_running_an_empty_list_of_writes_together_is_a_no_op(db: Db) -> None:
    async with db.engine.begin() as conn:
        await pg.execute_together(conn, [])
        assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0


async def _prepared_on_the_only_connection(db: Db, read_with: str) -> list[str]:
    # One pooled connection, reused by each block in turn.
    engine = create_engine(db.engine.url.render_as_string(hide_password=False), pool_size=1)
    try:
        async with engine.begin() as conn:
            for _ in range(6):  # psycopg prepares a statement on its fifth use
                await pg.fetch_all(conn, "SELECT count(*) FROM outbox WHERE topic = %s", ("order",))
        opened = reading(engine) if read_with == "reading" else engine.connect()
        async with opened as conn:
            await conn.execute(text("SELECT 1"))
        async with engine.connect() as conn:
            return list((await conn.execute(text("SELECT statement FROM pg_prepared_statements"))).scalars())
    finally:
        await engine.dispose()


async def test_a_read_through_reading_keeps_the_statements_the_connection_prepared(db: Db) -> None:
    assert any(
        "FROM outbox" in statement for statement in await _prepared_on_the_only_connection(db, "reading")
    )


async def test_each_read_through_reading_is_a_transaction_of_its_own_with_no_begin_or_commit(db: Db) -> None:
    # Two statements of one explicit transaction share its id; in autocommit each has its own.
    async with reading(db.engine) as conn:
        first = await conn.scalar(text("SELECT pg_current_xact_id()::text"))
        second = await conn.scalar(text("SELECT pg_current_xact_id()::text"))
    assert first != second
    async with db.engine.begin() as conn:
        first = await conn.scalar(text("SELECT pg_current_xact_id()::text"))
        second = await conn.scalar(text("SELECT pg_current_xact_id()::text"))
    assert first == second


async def test_a_read_that_rolls_back_makes_psycopg_forget_them(db: Db) -> None:
    # Why `reading` exists: if this starts failing, psycopg no longer deallocates on ROLLBACK.
    assert await _prepared_on_the_only_connection(db, "connect") == []


async def test_array_parameters_sent_in_binary_arrive_exactly_as_given(db: Db) -> None:
    # What the text format had to quote and escape: quotes, backslashes, a bytea's hex, NULL elements.
    raw = [b'{"note": "a \\"quoted\\" \\\\ path"}', b"\\x00", None]
    texts = ['{"sku": "A\\"1"}', "", None, "NULL"]
    async with db.engine.connect() as conn:
        rows = await pg.fetch_all(
            conn,
            "SELECT %s::bytea[], %s::text[], %s::uuid[], %s::bigint[], %s::float8[], %s::int[]",
            (raw, texts, [uuid.UUID(int=7)], [1, 2**40], [0.25], []),
        )
    assert rows == [(raw, texts, [uuid.UUID(int=7)], [1, 2**40], [0.25], [])]
