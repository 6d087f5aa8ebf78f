"""Delivery's HTTP API: inventory, shipments, and one route per carrier step (`delivery/lifecycle.py`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, ClassVar

from faust.web import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from common.access import CARRIER, OPERATOR, SHIPMENT_READ, SHOP_READ
from common.context import ServiceContext
from common.events.values import Sku
from common.openapi import Answer, Link, Route
from common.params import DIGITS, OrderPath, Parameters
from common.web import Blueprint, JsonView, caller_of, saga_of
from delivery import queries
from delivery.answers import ShipmentAnswer, StockAnswer, StockList, StockRow, StockSet
from delivery.lifecycle import STEPS, CarrierStep
from delivery.shipping import carrier_progress
from delivery.stock_store import set_stock


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


class SkuPath(Parameters):
    sku: Sku


class InventoryQuery(Parameters):
    after: Sku | None = Field(default=None, description="the previous page's `next_after`: SKUs after it")
    limit: Annotated[int, Field(ge=1, le=1000, description="at most this many SKUs"), DIGITS] = 1000


STOCK = Route(
    "GET",
    "/inventory/{sku}",
    "Stock of one SKU",
    path_params=SkuPath,
    responses={200: Answer("its stock", StockRow), 404: "not_found: this SKU was never stocked"},
    access=SHOP_READ,
)

SET_STOCK = Route(
    "PUT",
    "/inventory/{sku}",
    "Set the units on hand of a SKU",
    path_params=SkuPath,
    request=StockUpdate,
    responses={
        200: Answer(
            "the new stock level", StockAnswer, links={"stock": Link(STOCK, {"sku": "$request.path.sku"})}
        )
    },
    access=OPERATOR,
)

STOCK_LIST = Route(
    "GET",
    "/inventory",
    "Stock of every SKU, by SKU, a page at a time",
    query=InventoryQuery,
    responses={200: Answer("a page of SKUs", StockList)},
    access=SHOP_READ,
)
LOAD_STOCK = Route(
    "POST",
    "/inventory",
    "Load a stock list (a SKU listed twice gets its last count)",
    request=StockFile,
    responses={
        200: Answer(
            "the new stock levels",
            StockSet,
            links={"first": Link(STOCK, {"sku": "$response.body#/items/0/sku"})},
        )
    },
    access=OPERATOR,
)


def _step_routes() -> dict[CarrierStep, Route]:
    """One route per carrier step, `POST /shipments/{order_id}/<step>`, in its declared words; each
    answer links to the next step (built from the last one back, since a link names its route)."""
    routes: dict[CarrierStep, Route] = {}
    following: tuple[CarrierStep, Route] | None = None
    for carrier_step in reversed(CarrierStep):
        rules = STEPS[carrier_step]
        links = {} if following is None else {following[0].value: _to_the_same_order(following[1])}
        route = Route(
            "POST",
            f"/shipments/{{order_id}}/{carrier_step.value}",
            f"Carrier: {rules.carrier_did}",
            path_params=OrderPath,
            responses={
                200: Answer(rules.done, ShipmentAnswer, links=links),
                404: "not_found: no shipment for this order",
                409: f"wrong_state: {rules.not_ready}",
            },
            access=CARRIER,
        )
        routes[carrier_step] = route
        following = (carrier_step, route)
    return {carrier_step: routes[carrier_step] for carrier_step in CarrierStep}


def _to_the_same_order(route: Route) -> Link:
    return Link(route, {"order_id": "$request.path.order_id"})


STEP_ROUTES = _step_routes()
FIRST_STEP = next(iter(CarrierStep))

SHIPMENT = Route(
    "GET",
    "/shipments/{order_id}",
    "The shipment of an order",
    path_params=OrderPath,
    responses={
        200: Answer(
            "the shipment",
            ShipmentAnswer,
            links={FIRST_STEP.value: _to_the_same_order(STEP_ROUTES[FIRST_STEP])},
        ),
        404: "not_found: no shipment for this order",
    },
    access=SHIPMENT_READ,
)

ROUTES = (SET_STOCK, STOCK, STOCK_LIST, LOAD_STOCK, SHIPMENT, *STEP_ROUTES.values())


def last_count_of_each(items: Iterable[StockItem]) -> dict[str, int]:
    """A stock list as counts by SKU: a SKU listed twice gets its last count (as if set one by one)."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.sku] = item.on_hand
    return counts


blueprint = Blueprint("delivery")


@blueprint.serve(STOCK, SET_STOCK)
class Inventory(JsonView):
    async def get(self, request: Request, sku: str) -> Response:
        return self.answer(await queries.stock_of(self.dependency(ServiceContext).engine, sku))

    async def put(self, request: Request, sku: str, body: StockUpdate) -> Response:
        engine = self.dependency(ServiceContext).engine
        [level] = await set_stock(engine, {sku: body.on_hand}, by=caller_of(request).name)
        return self.answer(StockAnswer.from_level(level))


@blueprint.serve(STOCK_LIST, LOAD_STOCK)
class InventoryList(JsonView):
    async def get(self, request: Request, query: InventoryQuery) -> Response:
        engine = self.dependency(ServiceContext).engine
        return self.answer(await queries.stock_page(engine, after=query.after, limit=query.limit))

    async def post(self, request: Request, body: StockFile) -> Response:
        engine, by = self.dependency(ServiceContext).engine, caller_of(request).name
        levels = await set_stock(engine, last_count_of_each(body.items), by=by)
        return self.answer(StockSet.of(levels))


@blueprint.serve(SHIPMENT)
class Shipment(JsonView):
    async def get(self, request: Request, order_id: str) -> Response:
        engine = self.dependency(ServiceContext).engine
        return self.answer(await queries.shipment_of(engine, saga_of(request, order_id)))


class _CarrierStep(JsonView):
    carrier_step: ClassVar[CarrierStep]

    async def post(self, request: Request, order_id: str) -> Response:
        context = self.dependency(ServiceContext)
        saga = saga_of(request, order_id)
        by = caller_of(request).name
        shipment: ShipmentAnswer = await carrier_progress(
            context.unit_of_work, context.engine, saga, self.carrier_step, by=by
        )
        return self.answer(shipment)


def _serve_steps() -> None:
    """Serve each carrier step's route with a view that makes that step."""
    for carrier_step, route in STEP_ROUTES.items():
        name = f"Shipment{carrier_step.value.capitalize()}"
        blueprint.serve(route)(type(name, (_CarrierStep,), {"carrier_step": carrier_step}))


_serve_steps()
