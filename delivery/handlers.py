"""How delivery reacts to the `order` topic: reserve all-or-nothing; decide every cancel (release and
confirm, or refuse because the parcel has shipped)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from common.config import Service
from common.events import DecodedEvent, Envelope, new_envelope
from common.events.delivery import CancellationConfirmed, CancellationRefused, DeliveryScheduled, OutOfStock
from common.events.order import OrderPlaced
from common.events.values import SkuShortage
from common.messaging.runner import Effects, Handler
from delivery import models
from delivery.cancels import apply_cancel
from delivery.inventory import Shortage, reserve
from delivery.lifecycle import ShipmentStatus
from delivery.shipment_store import SqlShipmentStore
from delivery.stock_store import lines_of, lock_levels, save_levels_statement

log = logging.getLogger(__name__)


async def on_order_placed(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope] | Effects:
    """Reserve every line or none. One shipment row per order makes a second OrderPlaced a no-op, and a
    cancel that arrived first (the tombstone row) means nothing is reserved at all."""
    assert isinstance(event.payload, OrderPlaced)
    placed = event.payload
    lines_json = [line.model_dump(mode="json") for line in placed.lines]
    claimed = await pg.fetch_all(
        conn,
        # One shipment row per order: a second OrderPlaced, or one after a cancel, claims nothing.
        f"INSERT INTO {models.shipments.name} (order_id, status, lines, shipping_address, trace_context)"
        " VALUES (%s, %s, %s::json, %s::json, %s) ON CONFLICT DO NOTHING RETURNING order_id",
        (
            event.order_id,
            ShipmentStatus.SCHEDULED.value,
            json.dumps(lines_json),
            placed.shipping_address.model_dump_json(),
            event.trace,
        ),
    )
    if not claimed:
        return []
    lines = lines_of(lines_json)
    levels = await lock_levels(conn, (line.sku for line in lines))
    outcome = reserve(levels, lines)
    if isinstance(outcome, Shortage):
        short = tuple(
            SkuShortage(sku=s.sku, requested=s.requested, available=s.available) for s in outcome.short
        )
        await conn.execute(
            update(models.shipments)
            .where(models.shipments.c.order_id == event.order_id)
            .values(
                status=ShipmentStatus.OUT_OF_STOCK,
                short=[s.model_dump() for s in short],
                updated_at=func.now(),
            )
        )
        return [_emit(OutOfStock(short=short), event)]
    # The reservation is saved by the runner, in one statement with the outbox row.
    writes = [save_levels_statement(outcome.levels)] if outcome.levels else []
    return Effects(events=[_emit(DeliveryScheduled(lines=placed.lines), event)], writes=writes)


async def on_cancellation_requested(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
    """Delivery decides the cancel, as the shipment's owner: release and confirm, or refuse because the
    parcel has shipped. The shipment's row lock orders this against a ship step of the same order."""
    return [_emit(await apply_cancel(SqlShipmentStore(conn), event.order_id), event)]


async def on_order_cancelled(conn: AsyncConnection, event: DecodedEvent) -> Sequence[Envelope]:
    """The order is cancelled for good. Nothing is held any more when delivery confirmed the cancel or
    found no stock; events written before cancels were confirmed by delivery may still find a
    reservation to release, or a parcel that shipped (logged: that order was refunded after shipping)."""
    if isinstance(await apply_cancel(SqlShipmentStore(conn), event.order_id), CancellationRefused):
        log.error("order %s was cancelled after it shipped; nothing to release", event.order_id)
    return []


def _emit(
    payload: DeliveryScheduled | OutOfStock | CancellationConfirmed | CancellationRefused, cause: DecodedEvent
) -> Envelope:
    return new_envelope(
        payload,
        order_id=cause.order_id,
        producer=Service.DELIVERY.value,
        causation_id=cause.envelope.event_id,
    )


HANDLERS: dict[str, Handler] = {
    "OrderPlaced": on_order_placed,
    "OrderCancellationRequested": on_cancellation_requested,
    "OrderCancelled": on_order_cancelled,
}
