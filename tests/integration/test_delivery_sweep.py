"""Delivery's auto-progress sweep on a real PostgreSQL: bulk steps, no waiting out a held lock, its index."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from common import pg
from common.config import Service
from common.messaging.unit_of_work import UnitOfWork
from delivery import models
from delivery.lifecycle import STEPS, ShipmentStatus, StockMove
from delivery.shipment_store import due_shipments
from delivery.shipping import AUTO_PROGRESS, auto_progress
from tests.integration.schemas import Db, service_schema

# The steps the sweep makes on its own, in the carrier's order, and the event each emits.
AUTO_STEPS = tuple(rules for rules in STEPS.values() if rules.auto_progress)
STEP_EVENTS = tuple(rules.emits.value for rules in AUTO_STEPS)


@pytest.fixture()
async def db(database_urls: dict[str, str]) -> AsyncIterator[Db]:
    async with service_schema(Service.DELIVERY, database_urls["delivery"]) as schema:
        yield schema


def _sweep(db: Db, wake: Callable[[], None] = lambda: None) -> Callable[[], UnitOfWork]:
    """Units of work on the test's schema, as delivery's service context makes them."""
    return lambda: UnitOfWork(db.engine, models.messaging.outbox, Service.DELIVERY.value, wake)


async def _status(db: Db, order_id: str) -> str:
    async with db.engine.connect() as conn:
        status = await conn.scalar(
            select(models.shipments.c.status).where(models.shipments.c.order_id == order_id)
        )
    return str(status)


async def _stock_and_scheduled(
    db: Db, stock: list[dict[str, Any]], shipments: dict[str, list[dict[str, Any]]], age: str
) -> None:
    """Stock rows, and SCHEDULED shipments (order id → lines) last touched `age` ago (an SQL interval)."""
    async with db.engine.begin() as conn:
        await conn.execute(insert(models.stock), stock)
        for order_id, lines in shipments.items():
            await conn.execute(
                insert(models.shipments).values(
                    order_id=order_id,
                    status=ShipmentStatus.SCHEDULED,
                    lines=lines,
                    updated_at=func.now() - text(f"interval '{age}'"),
                )
            )


async def test_a_sweep_that_meets_a_held_stock_lock_gives_up_and_the_next_sweep_ships(db: Db) -> None:
    await _stock_and_scheduled(
        db,
        [{"sku": "SKU-1", "on_hand": 5, "reserved": 2, "shipped": 0, "stocked": 7}],
        {"acme:o-1": [{"sku": "SKU-1", "quantity": 2}]},
        "1 minute",
    )
    wakes: list[None] = []

    # Someone else (in production: the consumer's batch transaction) holds the stock row.
    async with db.engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(select(models.stock).where(models.stock.c.sku == "SKU-1").with_for_update())

        assert await auto_progress(_sweep(db, lambda: wakes.append(None)), timedelta(0)) == 0
        assert await _status(db, "acme:o-1") == ShipmentStatus.SCHEDULED
        await transaction.rollback()

    # With no delay, one sweep makes every step, in the carrier's order.
    assert await auto_progress(_sweep(db, lambda: wakes.append(None)), timedelta(0)) == len(AUTO_STEPS)
    assert await _status(db, "acme:o-1") == AUTO_STEPS[-1].reached == ShipmentStatus.DELIVERED
    assert len(wakes) == 1
    async with db.engine.connect() as conn:
        stock = (await conn.execute(select(models.stock))).one()
    assert (stock.on_hand, stock.reserved, stock.shipped) == (5, 0, 2)


async def test_one_sweep_ships_and_delivers_every_due_shipment_each_with_its_own_event(db: Db) -> None:
    outbox = models.messaging.outbox
    await _stock_and_scheduled(
        db,
        [
            {"sku": "SKU-1", "on_hand": 0, "reserved": 3, "shipped": 0, "stocked": 3},
            {"sku": "SKU-2", "on_hand": 1, "reserved": 4, "shipped": 0, "stocked": 5},
        ],
        {
            "acme:o-1": [{"sku": "SKU-1", "quantity": 1}],
            "acme:o-2": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
            "acme:o-3": [{"sku": "SKU-2", "quantity": 3}],
        },
        "1 minute",
    )

    assert await auto_progress(_sweep(db), timedelta(0)) == 3 * len(AUTO_STEPS)  # each step for each
    assert await auto_progress(_sweep(db), timedelta(0)) == 0

    async with db.engine.connect() as conn:
        shipments = (await conn.execute(select(models.shipments).order_by(models.shipments.c.order_id))).all()
        stock = {
            row.sku: (row.on_hand, row.reserved, row.shipped)
            for row in await conn.execute(select(models.stock))
        }
        events = (await conn.execute(select(outbox.c.key, outbox.c.event_type).order_by(outbox.c.id))).all()
    assert [s.status for s in shipments] == [ShipmentStatus.DELIVERED] * 3
    assert {(s.shipped_by, s.delivered_by) for s in shipments} == {(AUTO_PROGRESS, AUTO_PROGRESS)}
    assert len({s.tracking_code for s in shipments}) == 3
    assert stock == {"SKU-1": (0, 0, 3), "SKU-2": (1, 0, 4)}
    assert sorted(events) == sorted(
        [(order_id, kind) for order_id in ("acme:o-1", "acme:o-2", "acme:o-3") for kind in STEP_EVENTS]
    )
    # Per order, the steps' events are published in the carrier's order (Shipped before Delivered).
    for order_id in ("acme:o-1", "acme:o-2", "acme:o-3"):
        assert [kind for key, kind in events if key == order_id] == list(STEP_EVENTS)


async def test_with_a_delay_a_shipment_moved_by_a_sweep_waits_that_delay_before_its_next_step(db: Db) -> None:
    await _stock_and_scheduled(
        db,
        [{"sku": "SKU-1", "on_hand": 0, "reserved": 1, "shipped": 0, "stocked": 1}],
        {"acme:o-late": [{"sku": "SKU-1", "quantity": 1}]},
        "2 hours",
    )

    assert await auto_progress(_sweep(db), timedelta(hours=1)) == 1
    assert await _status(db, "acme:o-late") == AUTO_STEPS[0].reached
    assert await auto_progress(_sweep(db), timedelta(hours=1)) == 0


async def test_one_sweep_makes_the_first_step_of_what_is_scheduled_and_the_last_of_what_a_carrier_took(
    db: Db,
) -> None:
    """With a delay, one sweep makes one step per due shipment: the first auto-progress step of a
    scheduled one, and the last step of one a carrier took through every step before it (today: ship the
    first, deliver the second). The carrier's steps stay the carrier's, and its parcel its tracking code."""
    first, last = AUTO_STEPS[0], AUTO_STEPS[-1]
    made_by = [rules.made_by for rules in STEPS.values()]
    await _stock_and_scheduled(
        db,
        [{"sku": "SKU-1", "on_hand": 0, "reserved": 1, "shipped": 4, "stocked": 5}],
        {"acme:o-new": [{"sku": "SKU-1", "quantity": 1}]},
        "2 hours",
    )
    carriers = {column: "acme-carrier" for column in made_by[:-1]}  # every step before the last
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(models.shipments).values(
                order_id="acme:o-old",
                status=last.required,
                lines=[{"sku": "SKU-1", "quantity": 4}],
                tracking_code="TRK-CARRIER",
                updated_at=func.now() - text("interval '2 hours'"),
                **carriers,
            )
        )

    assert await auto_progress(_sweep(db), timedelta(hours=1)) == 2

    async with db.engine.connect() as conn:
        rows = await conn.execute(select(models.shipments).order_by(models.shipments.c.order_id))
        shipments = {row.order_id: row for row in rows}
        stock = (await conn.execute(select(models.stock))).one()
    new, old = shipments["acme:o-new"], shipments["acme:o-old"]
    assert new.status == first.reached
    assert {column: getattr(new, column) for column in made_by} == {
        column: AUTO_PROGRESS if column == first.made_by else None for column in made_by
    }
    assert (new.tracking_code is not None) is first.new_tracking_code
    assert new.tracking_code is None or new.tracking_code.startswith("TRK-")
    assert old.status == last.reached
    assert {column: getattr(old, column) for column in made_by} == {**carriers, last.made_by: AUTO_PROGRESS}
    assert old.tracking_code == "TRK-CARRIER"
    # The new parcel's unit leaves the shelf only if its first step is the one that ships.
    shipped_now = 1 if first.stock is StockMove.SHIP else 0
    assert (stock.on_hand, stock.reserved, stock.shipped) == (0, 1 - shipped_now, 4 + shipped_now)


async def test_the_sweep_can_find_due_shipments_through_the_in_transit_index(db: Db) -> None:
    sql, params = due_shipments(timedelta(seconds=5))
    async with db.engine.begin() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))  # the table is tiny; ask what is possible
        # The plan a prepared statement settles on: generic, parameters unknown.
        await conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        plan = "\n".join(line for (line,) in await pg.fetch_all(conn, f"EXPLAIN {sql}", params))
    assert "ix_shipments_in_transit_updated" in plan
