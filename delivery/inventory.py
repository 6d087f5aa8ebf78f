"""Pure stock rules. Per SKU: `on_hand` (free to reserve), `reserved`, `shipped`.

Invariant: on_hand + reserved + shipped equals everything ever stocked, and no count is ever negative.
Reserving moves units on_hand → reserved, releasing moves them back, shipping moves reserved → shipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from common.errors import Invalid


@dataclass(frozen=True)
class StockLevel:
    sku: str
    on_hand: int
    reserved: int = 0
    shipped: int = 0

    @property
    def stocked(self) -> int:
        return self.on_hand + self.reserved + self.shipped


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True)
class ShortLine:
    sku: str
    requested: int
    available: int


@dataclass(frozen=True)
class Reservation:
    """Every line fits: the new levels of the SKUs involved."""

    levels: Mapping[str, StockLevel]


@dataclass(frozen=True)
class Shortage:
    """At least one line does not fit, so nothing is reserved; each short SKU with what was asked and had."""

    short: tuple[ShortLine, ...]


class InventoryInvariantError(Exception):
    """Releasing or shipping units that are not reserved: a bug or corrupted data, never business."""


class InvalidStockLevel(Invalid):
    """An operator tried to set an impossible shelf count."""

    code = "invalid_stock"


def _demand(lines: Sequence[Line]) -> Counter[str]:
    demand: Counter[str] = Counter()
    for line in lines:
        if line.quantity <= 0:
            raise ValueError(f"quantity of {line.sku} must be positive, got {line.quantity}")
        demand[line.sku] += line.quantity
    return demand


def reserve(levels: Mapping[str, StockLevel], lines: Sequence[Line]) -> Reservation | Shortage:
    """All or nothing: reserve every line, or report every SKU that falls short and reserve none.

    Lines naming the same SKU are added up; a SKU never stocked has nothing available.
    """
    demand = _demand(lines)
    short = tuple(
        ShortLine(sku, wanted, available)
        for sku, wanted in sorted(demand.items())
        if wanted > (available := levels[sku].on_hand if sku in levels else 0)
    )
    if short:
        return Shortage(short)
    return Reservation(
        {
            sku: replace(
                levels[sku], on_hand=levels[sku].on_hand - wanted, reserved=levels[sku].reserved + wanted
            )
            for sku, wanted in demand.items()
        }
    )


def release(levels: Mapping[str, StockLevel], lines: Sequence[Line]) -> dict[str, StockLevel]:
    """Return reserved units to the shelf (a cancelled order)."""
    return _move(levels, lines, "release")


def ship(levels: Mapping[str, StockLevel], lines: Sequence[Line]) -> dict[str, StockLevel]:
    """Reserved units leave the warehouse."""
    return _move(levels, lines, "ship")


def _move(levels: Mapping[str, StockLevel], lines: Sequence[Line], action: str) -> dict[str, StockLevel]:
    moved: dict[str, StockLevel] = {}
    for sku, quantity in _demand(lines).items():
        level = levels.get(sku)
        if level is None or level.reserved < quantity:
            held = level.reserved if level else 0
            raise InventoryInvariantError(f"cannot {action} {quantity} of {sku}: only {held} reserved")
        if action == "release":
            moved[sku] = replace(level, reserved=level.reserved - quantity, on_hand=level.on_hand + quantity)
        else:
            moved[sku] = replace(level, reserved=level.reserved - quantity, shipped=level.shipped + quantity)
    return moved


def restock(level: StockLevel, new_on_hand: int) -> tuple[StockLevel, int]:
    """An operator sets the free shelf count; returns the new level and the change to the stocked total.

    Reserved and shipped units are untouched: a count only says what is free on the shelf now.
    """
    if new_on_hand < 0:
        raise InvalidStockLevel(f"on_hand of {level.sku} cannot be negative, got {new_on_hand}")
    return replace(level, on_hand=new_on_hand), new_on_hand - level.on_hand
