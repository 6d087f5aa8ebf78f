"""Delivery's stock rules: all-or-nothing reservations, releases, shipments and restocking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from delivery.inventory import (
    InvalidStockLevel,
    InventoryInvariantError,
    Line,
    Reservation,
    Shortage,
    ShortLine,
    StockLevel,
    release,
    reserve,
    restock,
    ship,
)

LEVELS = {"A": StockLevel("A", on_hand=5), "B": StockLevel("B", on_hand=1, reserved=2)}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param([Line("A", 2)], Reservation({"A": StockLevel("A", 3, 2)}), id="fits"),
        pytest.param([Line("A", 5)], Reservation({"A": StockLevel("A", 0, 5)}), id="takes-the-last-unit"),
        pytest.param(
            [Line("A", 2), Line("B", 1)],
            Reservation({"A": StockLevel("A", 3, 2), "B": StockLevel("B", 0, 3)}),
            id="several-skus",
        ),
        pytest.param(
            [Line("A", 3), Line("A", 3)], Shortage((ShortLine("A", 6, 5),)), id="same-sku-lines-add-up"
        ),
        pytest.param(
            [Line("A", 1), Line("B", 2)], Shortage((ShortLine("B", 2, 1),)), id="one-short-reserves-none"
        ),
        pytest.param([Line("Z", 1)], Shortage((ShortLine("Z", 1, 0),)), id="unknown-sku-has-none"),
        pytest.param(
            [Line("Z", 1), Line("A", 9)],
            Shortage((ShortLine("A", 9, 5), ShortLine("Z", 1, 0))),
            id="all-short-skus",
        ),
    ],
)
def test_reserve_is_all_or_nothing(lines: list[Line], expected: Reservation | Shortage) -> None:
    assert reserve(LEVELS, lines) == expected


def test_reserve_refuses_non_positive_quantities() -> None:
    with pytest.raises(ValueError, match="positive"):
        reserve(LEVELS, [Line("A", 0)])


def test_release_returns_reserved_units_to_the_shelf() -> None:
    assert release(LEVELS, [Line("B", 2)]) == {"B": StockLevel("B", on_hand=3, reserved=0)}


def test_ship_moves_reserved_units_out() -> None:
    assert ship(LEVELS, [Line("B", 1)]) == {"B": StockLevel("B", on_hand=1, reserved=1, shipped=1)}


@pytest.mark.parametrize("operation", [release, ship])
def test_moving_more_than_is_reserved_is_an_invariant_error(operation: object) -> None:
    with pytest.raises(InventoryInvariantError, match="only 2 reserved"):
        operation(LEVELS, [Line("B", 3)])  # type: ignore[operator]


@pytest.mark.parametrize(
    ("new_on_hand", "expected_level", "delta"),
    [(10, StockLevel("B", 10, 2), 9), (0, StockLevel("B", 0, 2), -1), (1, StockLevel("B", 1, 2), 0)],
)
def test_restock_sets_the_free_shelf_count_and_reports_the_change(
    new_on_hand: int, expected_level: StockLevel, delta: int
) -> None:
    assert restock(LEVELS["B"], new_on_hand) == (expected_level, delta)


def test_restock_refuses_a_negative_count() -> None:
    with pytest.raises(InvalidStockLevel):
        restock(LEVELS["A"], -1)


operations = st.lists(
    st.tuples(st.sampled_from(["reserve", "release", "ship"]), st.sampled_from("AB"), st.integers(1, 4)),
    max_size=40,
)


@given(st.integers(0, 10), st.integers(0, 10), operations)
def test_any_sequence_of_operations_conserves_stock_and_never_goes_negative(
    stock_a: int, stock_b: int, ops: list[tuple[str, str, int]]
) -> None:
    levels = {"A": StockLevel("A", stock_a), "B": StockLevel("B", stock_b)}
    stocked = {sku: level.stocked for sku, level in levels.items()}
    for action, sku, quantity in ops:
        line = [Line(sku, quantity)]
        if action == "reserve":
            outcome = reserve(levels, line)
            if isinstance(outcome, Reservation):
                levels.update(outcome.levels)
        elif levels[sku].reserved >= quantity:
            levels.update(release(levels, line) if action == "release" else ship(levels, line))
        for level in levels.values():
            assert min(level.on_hand, level.reserved, level.shipped) >= 0
            assert level.stocked == stocked[level.sku]
