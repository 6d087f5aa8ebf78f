"""The two invariant checkers (the test suite's and the Python client's) restate which shipment statuses
hold stock and which have left the warehouse; they must say what `delivery/lifecycle.py` declares, or a
new status slips past the one check that notices a refunded parcel that shipped."""

from __future__ import annotations

from delivery.lifecycle import STATUSES, Stock
from saga_client import checker
from tests import invariants

HOLDS_STOCK = {status.value for status, rules in STATUSES.items() if rules.stock is not Stock.NONE}
LEFT_THE_WAREHOUSE = {status.value for status, rules in STATUSES.items() if rules.left_the_warehouse}


def test_the_test_suites_checker_knows_what_each_shipment_status_holds() -> None:
    assert invariants.HOLDS_STOCK == HOLDS_STOCK
    assert invariants.LEFT_THE_WAREHOUSE == LEFT_THE_WAREHOUSE


def test_the_clients_checker_knows_what_each_shipment_status_holds() -> None:
    assert {status.value for status in checker.HOLDS_STOCK} == HOLDS_STOCK
    assert {status.value for status in checker.LEFT_THE_WAREHOUSE} == LEFT_THE_WAREHOUSE
