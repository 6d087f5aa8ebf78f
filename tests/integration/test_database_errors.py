"""A database error's text carries no value of its statement (common/db.py), on a real PostgreSQL: the
text that reaches logs and dead letters is the exception's, so it is checked there."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import exc, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from common.events import DecodedEvent, Envelope, encode_event, new_envelope
from common.events.delivery import Shipped
from common.messaging.dead_letters import RawMessage
from common.messaging.runner import EventRunner, MessageOutcome
from order.models import messaging as tables
from tests.integration.schemas import Db, order_schema

SECRET = "tok_secret_123"
_CLAIM = "INSERT INTO processed_events (consumer, event_id, event_type, order_id) VALUES ({})"


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with order_schema(database_urls["order"]) as schema:
        yield schema


def _text_of(error: BaseException) -> str:
    """Everything a log line with the traceback would print of `error`: it and its causes."""
    parts = []
    current: BaseException | None = error
    while current is not None:
        parts.append(f"{current!s} {current!r}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


async def test_a_constraint_violation_through_sqlalchemy_names_the_constraint_but_not_the_values(
    db: Db,
) -> None:
    claim = text(_CLAIM.format(":consumer, :event_id, 'Shipped', :order_id"))
    values = {"consumer": SECRET, "event_id": uuid.uuid4(), "order_id": SECRET}
    async with db.engine.begin() as conn:
        await conn.execute(claim, values)

    with pytest.raises(exc.IntegrityError) as raised:
        async with db.engine.begin() as conn:
            await conn.execute(claim, values)  # the same key again: its DETAIL would show the values

    assert SECRET not in _text_of(raised.value)
    assert "pk_processed_events" in str(raised.value) and "23505" in str(raised.value)


async def test_a_value_the_server_quotes_in_its_message_is_masked(db: Db) -> None:
    with pytest.raises(exc.DataError) as raised:
        async with db.engine.begin() as conn:
            await conn.execute(text("SELECT CAST(:value AS integer)"), {"value": SECRET})

    assert SECRET not in _text_of(raised.value)
    assert 'invalid input syntax for type integer: "***"' in str(raised.value)


async def test_a_violation_through_plain_sql_carries_no_value_either(db: Db) -> None:
    claim = _CLAIM.format("%s, %s, 'Shipped', %s")
    values = (SECRET, uuid.uuid4(), SECRET)
    async with db.engine.begin() as conn:
        await pg.execute(conn, claim, values)

    with pytest.raises(exc.IntegrityError) as raised:
        async with db.engine.begin() as conn:
            await pg.execute(conn, claim, values)

    assert SECRET not in _text_of(raised.value)


async def test_a_dead_letter_of_a_database_error_and_its_log_line_carry_no_value(
    db: Db, caplog: pytest.LogCaptureFixture
) -> None:
    async def writes_a_duplicate(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
        claim = text(_CLAIM.format(":consumer, :event_id, 'Shipped', :order_id"))
        values = {"consumer": SECRET, "event_id": event.envelope.event_id, "order_id": SECRET}
        await conn.execute(claim, values)
        await conn.execute(claim, values)
        return []

    runner = EventRunner(
        consumer="test",
        engine=db.engine,
        tables=tables,
        handlers={"Shipped": writes_a_duplicate},
        emit_topic="order",
    )
    envelope = new_envelope(Shipped(tracking_code="T"), order_id="o-1", producer="delivery")
    message = RawMessage(topic="delivery", partition=0, offset=0, key=b"o-1", value=encode_event(envelope))

    with caplog.at_level(logging.ERROR):
        assert await runner.process(message) is MessageOutcome.PARKED

    async with db.engine.connect() as conn:
        error = await conn.scalar(select(tables.dead_letters.c.error))
    assert error is not None and error.startswith("handler error: sqlalchemy.exc.IntegrityError")
    assert "pk_processed_events" in error and SECRET not in error
    assert caplog.records and SECRET not in caplog.text
