"""Delivery's answer to a cancel, as the shipment's owner: release and confirm, or refuse because the
parcel has shipped (the rules: `delivery.lifecycle.answer_cancel`).

Load → decide → save: the order's shipment is locked (a ship step of the same order waits, or has won),
the answer is decided from its status, and what it says is saved: the reservation back on the shelf
and the shipment RELEASED, nothing for a shipment that holds nothing, or a CANCELLED shipment kept for
an order not seen yet, so that its late OrderPlaced reserves nothing.
"""

from __future__ import annotations

from common.events.delivery import CancellationConfirmed, CancellationRefused
from common.events.values import OrderLine
from delivery.inventory import StockLevel, release
from delivery.lifecycle import Refuse, answer_cancel
from delivery.shipments import ShipmentStore
from delivery.stock_store import lines_of


async def apply_cancel(store: ShipmentStore, order_id: str) -> CancellationConfirmed | CancellationRefused:
    """Apply delivery's answer to a cancel of `order_id`: release what is reserved, or remember the
    cancel of an order not seen yet; returns the answer to send."""
    shipment = await store.lock(order_id)
    answer = answer_cancel(shipment.status if shipment is not None else None)
    if isinstance(answer, Refuse):
        assert shipment is not None  # no shipment: nothing has shipped, the cancel is confirmed
        return CancellationRefused(shipment_status=shipment.status, tracking_code=shipment.tracking_code)
    if answer.remember or shipment is None:
        assert answer.to is not None
        await store.remember_cancel(order_id, answer.to)
        return CancellationConfirmed()
    released: tuple[OrderLine, ...] = ()
    levels: dict[str, StockLevel] = {}
    if answer.release:
        lines = lines_of(shipment.lines)
        levels = release(await store.lock_levels(line.sku for line in lines), lines)
        released = tuple(OrderLine.model_validate(line) for line in shipment.lines)
    if levels or answer.to is not None:
        await store.save_cancel(order_id, levels, answer.to)
    return CancellationConfirmed(released=released)
