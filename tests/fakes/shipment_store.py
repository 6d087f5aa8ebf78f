"""An in-memory `ShipmentStore` for delivery's unit tests: shipments and stock as the SQL store
(`delivery/shipment_store.py`) keeps them, no database and no locks (a test runs one use case at a
time)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from delivery.inventory import StockLevel
from delivery.lifecycle import ShipmentStatus
from delivery.shipments import Shipment, StepsSaved


@dataclass
class FakeShipmentStore:
    shipments: dict[str, Shipment] = field(default_factory=dict)  # by order id
    made_by: dict[str, dict[str, str]] = field(default_factory=dict)  # order id → who-made-it column → who
    stock: dict[str, StockLevel] = field(default_factory=dict)  # by SKU
    locked_skus: list[list[str]] = field(default_factory=list)  # each `lock_levels` call's SKUs

    def schedule(self, order_id: str, lines: Sequence[tuple[str, int]], *, trace: str | None = None) -> None:
        """A shipment SCHEDULED with its lines (each unit at 10.00) reserved on the shelf (what an
        OrderPlaced does)."""
        self.shipments[order_id] = Shipment(
            order_id,
            ShipmentStatus.SCHEDULED.value,
            [{"sku": sku, "quantity": quantity, "unit_price_minor": 1000} for sku, quantity in lines],
            None,
            trace,
        )
        for sku, quantity in lines:
            level = self.stock.get(sku, StockLevel(sku, on_hand=0))
            self.stock[sku] = replace(level, reserved=level.reserved + quantity)

    def status(self, order_id: str) -> str:
        return self.shipments[order_id].status

    async def lock(self, order_id: str) -> Shipment | None:
        return self.shipments.get(order_id)

    async def lock_levels(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        wanted = sorted(set(skus))
        self.locked_skus.append(wanted)
        return {sku: self.stock[sku] for sku in wanted if sku in self.stock}

    async def save_steps(
        self, shipments: Sequence[StepsSaved], levels: Mapping[str, StockLevel], by: str
    ) -> None:
        self.stock.update(levels)
        for saved in shipments:
            self.shipments[saved.order_id] = replace(
                self.shipments[saved.order_id], status=saved.status, tracking_code=saved.tracking_code
            )
            columns = self.made_by.setdefault(saved.order_id, {})
            columns.update({column: by for column in saved.made_by})

    async def remember_cancel(self, order_id: str, status: ShipmentStatus) -> None:
        assert order_id not in self.shipments, "the SQL store's insert would fail on the primary key"
        self.shipments[order_id] = Shipment(order_id, status.value, [], None, None)

    async def save_cancel(
        self, order_id: str, levels: Mapping[str, StockLevel], status: ShipmentStatus | None
    ) -> None:
        self.stock.update(levels)
        if status is not None:
            self.shipments[order_id] = replace(self.shipments[order_id], status=status.value)
