"""Shipment progress: SCHEDULED → SHIPPED → DELIVERED, driven by the carrier API or auto-progress."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.config import Service
from common.events import Envelope, new_envelope
from common.events.delivery import Delivered, Shipped
from common.messaging.outbox import enqueue
from delivery import models
from delivery.inventory import ship
from delivery.stock_store import lines_of, lock_levels, save_levels


class ShipmentStatus(StrEnum):
    SCHEDULED = "SCHEDULED"  # stock reserved
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RELEASED = "RELEASED"  # cancelled after reserving; stock returned
    OUT_OF_STOCK = "OUT_OF_STOCK"  # nothing reserved
    CANCELLED = "CANCELLED"  # the cancel arrived before the order: nothing will be reserved


# The transitions the carrier may make, and the event each one emits.
_NEXT = {
    "ship": (ShipmentStatus.SCHEDULED, ShipmentStatus.SHIPPED),
    "deliver": (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED),
}


class ShipmentNotFound(Exception):
    pass


class ShipmentConflict(Exception):
    """The shipment is not in the state the step needs (e.g. shipping a released reservation)."""


async def progress(conn: AsyncConnection, order_id: str, step: str) -> Envelope | None:
    """Make one carrier step inside the caller's transaction; None if it was already made (idempotent)."""
    required, target = _NEXT[step]
    shipments = models.shipments
    shipment = (
        await conn.execute(select(shipments).where(shipments.c.order_id == order_id).with_for_update())
    ).first()
    if shipment is None:
        raise ShipmentNotFound(order_id)
    if shipment.status == target:
        return None
    if shipment.status != required:
        raise ShipmentConflict(f"shipment {order_id} is {shipment.status}; {step} needs {required.value}")
    tracking = shipment.tracking_code
    if step == "ship":
        lines = lines_of(shipment.lines)
        levels = await lock_levels(conn, (line.sku for line in lines))
        await save_levels(conn, ship(levels, lines))
        tracking = f"TRK-{uuid.uuid4().hex[:10].upper()}"
    await conn.execute(
        update(shipments)
        .where(shipments.c.order_id == order_id)
        .values(status=target, tracking_code=tracking, updated_at=func.now())
    )
    payload = Shipped(tracking_code=tracking) if step == "ship" else Delivered()
    envelope = new_envelope(payload, order_id=order_id, producer=Service.DELIVERY.value)
    await enqueue(conn, models.messaging.outbox, Service.DELIVERY.value, [envelope])
    return envelope


async def auto_progress(engine: AsyncEngine, after: timedelta, wake_relay: Callable[[], None]) -> int:
    """Demo mode: ship what has been scheduled for `after`, deliver what has been shipped for `after`."""
    shipments = models.shipments
    moved = 0
    for step, (required, _target) in _NEXT.items():
        async with engine.begin() as conn:
            due = (
                await conn.scalars(
                    select(shipments.c.order_id)
                    .where(shipments.c.status == required, shipments.c.updated_at <= func.now() - after)
                    .limit(200)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for order_id in due:
                if await progress(conn, order_id, step) is not None:
                    moved += 1
    if moved:
        wake_relay()
    return moved
