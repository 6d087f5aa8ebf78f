"""Delivery's answers, as its OpenAPI document declares them and its views send them.

Each answer is built in one place: a SKU's stock from its row (`StockRow.from_row`) or from the level
just saved (`StockAnswer.from_level`), a shipment from its row (`ShipmentAnswer.from_row`). The reads
(`delivery/queries.py`) return these models; the views send them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Row

from common.events.values import OrderLine, SkuShortage
from common.tenancy import order_id_of, owner_of
from delivery.inventory import StockLevel
from delivery.lifecycle import ShipmentStatus


class StockAnswer(BaseModel):
    """A SKU's units: free on the shelf, reserved for scheduled shipments, shipped."""

    sku: str
    on_hand: int
    reserved: int
    shipped: int

    @staticmethod
    def from_level(level: StockLevel) -> StockAnswer:
        """A SKU's stock as the stock rules computed it (`delivery/inventory.py`)."""
        return StockAnswer(
            sku=level.sku, on_hand=level.on_hand, reserved=level.reserved, shipped=level.shipped
        )


class StockRow(StockAnswer):
    stocked: int = Field(description="every unit ever stocked: on_hand + reserved + shipped")
    updated_by: str | None = Field(description="the operator who counted it last")

    @staticmethod
    def from_row(row: Row[Any]) -> StockRow:
        """A SKU's stock as recorded (a row of `stock`), with who counted it last."""
        return StockRow.model_validate(row, from_attributes=True)


class StockList(BaseModel):
    items: list[StockRow]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last")


class StockSet(BaseModel):
    items: list[StockAnswer] = Field(description="each SKU listed, once, in the order first listed")

    @staticmethod
    def of(levels: Iterable[StockLevel]) -> StockSet:
        return StockSet(items=[StockAnswer.from_level(level) for level in levels])


class ShipmentAnswer(BaseModel):
    order_id: str = Field(description="the order id as its shop knows it")
    owner: str = Field(description="the shop whose order it is")
    status: ShipmentStatus
    lines: list[OrderLine]
    short: list[SkuShortage] | None = Field(description="the SKUs that were out of stock, if any")
    tracking_code: str | None
    shipped_by: str | None = Field(description="who shipped it: a carrier key's name, or auto-progress")
    delivered_by: str | None = Field(description="who delivered it")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def from_row(row: Row[Any]) -> ShipmentAnswer:
        """An order's shipment as recorded (a row of `shipments`): its saga id split into the shop's id and
        the shop."""
        return ShipmentAnswer(
            order_id=order_id_of(row.order_id),
            owner=owner_of(row.order_id),
            status=row.status,
            lines=row.lines,
            short=row.short,
            tracking_code=row.tracking_code,
            shipped_by=row.shipped_by,
            delivered_by=row.delivered_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
