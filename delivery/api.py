"""Delivery's HTTP API: inventory, shipments, and the carrier-style ship and deliver steps."""

from __future__ import annotations

from typing import Any

import faust
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from common.app import ServiceContext
from common.db import reading
from common.events.values import Sku
from common.openapi import Route
from common.web import ApiError, JsonView, not_found, parse_body
from delivery import models
from delivery.inventory import InvalidStockLevel, StockLevel, restock
from delivery.lifecycle import CarrierStep
from delivery.shipping import progress
from delivery.stock_store import lock_levels


class StockUpdate(BaseModel):
    """Set how many units of a SKU are on the shelf and free to reserve."""

    model_config = ConfigDict(extra="forbid")
    on_hand: int = Field(ge=0, le=10_000_000)


class StockItem(StockUpdate):
    sku: Sku


class StockFile(BaseModel):
    """A whole stock list at once (demo data, or a warehouse's count)."""

    model_config = ConfigDict(extra="forbid")
    items: list[StockItem] = Field(min_length=1, max_length=10_000)


ROUTES = [
    Route(
        "PUT",
        "/inventory/{sku}",
        "Set the units on hand of a SKU",
        request=StockUpdate,
        responses={200: "OK", 422: "invalid"},
    ),
    Route("GET", "/inventory/{sku}", "Stock of one SKU", responses={200: "OK", 404: "unknown"}),
    Route("GET", "/inventory", "Stock of every SKU"),
    Route(
        "POST", "/inventory", "Load a stock list", request=StockFile, responses={200: "OK", 422: "invalid"}
    ),
    Route("GET", "/shipments/{order_id}", "The shipment of an order", responses={200: "OK", 404: "unknown"}),
    Route(
        "POST",
        "/shipments/{order_id}/ship",
        "Carrier: picked up",
        responses={200: "shipped", 404: "unknown", 409: "not scheduled"},
    ),
    Route(
        "POST",
        "/shipments/{order_id}/deliver",
        "Carrier: delivered",
        responses={200: "delivered", 404: "unknown", 409: "not shipped"},
    ),
]


async def set_on_hand(conn: Any, sku: str, on_hand: int) -> dict[str, Any]:
    """Create the SKU or change its shelf count; the change is added to the stocked total."""
    stock = models.stock
    await conn.execute(
        insert(stock).values(sku=sku, on_hand=0, reserved=0, shipped=0, stocked=0).on_conflict_do_nothing()
    )
    level = (await lock_levels(conn, [sku]))[sku]
    try:
        new_level, delta = restock(level, on_hand)
    except InvalidStockLevel as exc:
        raise ApiError(422, "invalid_stock", str(exc)) from exc
    await conn.execute(
        stock.update()
        .where(stock.c.sku == sku)
        .values(on_hand=new_level.on_hand, stocked=stock.c.stocked + delta)
    )
    return describe_level(new_level)


def describe_level(level: StockLevel) -> dict[str, Any]:
    return {"sku": level.sku, "on_hand": level.on_hand, "reserved": level.reserved, "shipped": level.shipped}


def attach_api(app: faust.App, context: ServiceContext) -> None:
    engine = context.engine
    stock, shipments = models.stock, models.shipments
    context.routes.extend(ROUTES)

    @app.page("/inventory/{sku}")
    class Inventory(JsonView):
        async def get(self, request: Any, sku: str) -> Any:
            async with reading(engine) as conn:
                row = (await conn.execute(select(stock).where(stock.c.sku == sku))).first()
            if row is None:
                raise not_found(f"sku {sku}")
            return self.json(_describe_row(row))

        async def put(self, request: Any, sku: str) -> Any:
            StockItem(sku=sku, on_hand=0)  # validates the SKU in the path
            body = await parse_body(request, StockUpdate)
            async with engine.begin() as conn:
                return self.json(await set_on_hand(conn, sku, body.on_hand))

    @app.page("/inventory")
    class InventoryList(JsonView):
        async def get(self, request: Any) -> Any:
            async with reading(engine) as conn:
                rows = (await conn.execute(select(stock).order_by(stock.c.sku))).all()
            return self.json({"items": [_describe_row(row) for row in rows]})

        async def post(self, request: Any) -> Any:
            body = await parse_body(request, StockFile)
            async with engine.begin() as conn:
                items = [await set_on_hand(conn, item.sku, item.on_hand) for item in body.items]
            return self.json({"items": items})

    @app.page("/shipments/{order_id}")
    class Shipment(JsonView):
        async def get(self, request: Any, order_id: str) -> Any:
            async with reading(engine) as conn:
                row = (await conn.execute(select(shipments).where(shipments.c.order_id == order_id))).first()
            if row is None:
                raise not_found(f"shipment for order {order_id}")
            return self.json(_describe_shipment(row))

    def carrier_view(carrier_step: CarrierStep) -> type[JsonView]:
        class Step(JsonView):
            async def post(self, request: Any, order_id: str) -> Any:
                async with context.unit_of_work() as work:
                    work.emit(await progress(work.conn, order_id, carrier_step))
                async with reading(engine) as conn:
                    row = (
                        await conn.execute(select(shipments).where(shipments.c.order_id == order_id))
                    ).one()
                return self.json(_describe_shipment(row))

        Step.__name__ = Step.__qualname__ = f"Shipment{carrier_step.value.title()}"
        return Step

    app.page("/shipments/{order_id}/ship")(carrier_view(CarrierStep.SHIP))
    app.page("/shipments/{order_id}/deliver")(carrier_view(CarrierStep.DELIVER))


def _describe_row(row: Any) -> dict[str, Any]:
    return {
        **describe_level(StockLevel(row.sku, row.on_hand, row.reserved, row.shipped)),
        "stocked": row.stocked,
    }


def _describe_shipment(row: Any) -> dict[str, Any]:
    return {
        "order_id": row.order_id,
        "status": row.status,
        "lines": row.lines,
        "short": row.short,
        "tracking_code": row.tracking_code,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
