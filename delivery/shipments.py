"""A shipment as delivery's use cases load it, and the store port they load and save it through.

The use cases read load → decide → save: the carrier's steps (`delivery/shipping.py`) and the answer to
a cancel (`delivery/cancels.py`) lock the order's shipment, decide by `delivery/lifecycle.py`'s rules,
lock the stock the decision moves, and save the outcome; their events go out with the caller's
transaction (the runner's or a unit of work's). The store is `delivery/shipment_store.py` in
PostgreSQL, on the caller's transaction; an in-memory fake in the unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from delivery.inventory import StockLevel
from delivery.lifecycle import ShipmentStatus


@dataclass(frozen=True)
class Shipment:
    """An order's shipment as loaded: its status, its lines (as the order sent them) and its parcel."""

    order_id: str
    status: str
    lines: list[dict[str, Any]]
    tracking_code: str | None
    trace_context: str | None  # the saga's trace, which its Shipped and Delivered continue


@dataclass(frozen=True)
class StepsSaved:
    """A shipment after its steps: its new status and tracking code, and the who-made-it columns of the
    steps made (`lifecycle.StepRules.made_by`)."""

    order_id: str
    status: str
    tracking_code: str | None
    made_by: frozenset[str]


class ShipmentStore(Protocol):
    """Where shipments and their stock are kept, inside the caller's transaction."""

    async def lock(self, order_id: str) -> Shipment | None:
        """The order's shipment, locked until the transaction ends (a step and a cancel of the same order
        take turns); None if the order has none."""

    async def lock_levels(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        """The stock of these SKUs, locked until the transaction ends (in SKU order: no deadlock)."""

    async def save_steps(
        self, shipments: Sequence[StepsSaved], levels: Mapping[str, StockLevel], by: str
    ) -> None:
        """The shipments' new states, `by` in the columns of the steps each made, and the new stock
        levels of rows locked by `lock_levels`, written together."""

    async def remember_cancel(self, order_id: str, status: ShipmentStatus) -> None:
        """Keep a shipment with no lines in `status` for an order cancelled before it was placed, so a
        late OrderPlaced reserves nothing."""

    async def save_cancel(
        self, order_id: str, levels: Mapping[str, StockLevel], status: ShipmentStatus | None
    ) -> None:
        """A cancel's outcome: the stock levels it released (rows locked by `lock_levels`; none if
        empty), then the shipment's new status (unchanged if None)."""
