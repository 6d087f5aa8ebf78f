"""Delivery's use cases on an in-memory store, in milliseconds: the carrier's steps (in order, retried,
out of order, on another shop's order) and the answer to a cancel (before pickup it releases, after
pickup it is refused, before the order it is remembered). The SQL store is covered by the integration
and end-to-end tests. The steps before the one a test is about are made as declared
(`tests/carrier_steps.py`), so a step added before `ship` is walked, not a reason for these tests to fail."""

from __future__ import annotations

import pytest

from common.events.delivery import CancellationConfirmed, CancellationRefused
from common.tenancy import saga_id
from delivery.cancels import apply_cancel
from delivery.inventory import StockLevel
from delivery.lifecycle import STEPS, CarrierStep, ShipmentStatus
from delivery.shipments import Shipment
from delivery.shipping import ShipmentConflict, ShipmentNotFound, progress
from tests.carrier_steps import CARRIER_STEPS, steps_before, steps_through
from tests.fakes.shipment_store import FakeShipmentStore

ORDER = saga_id("acme", "o-1")
SHIP, DELIVER = CarrierStep.SHIP, CarrierStep.DELIVER


@pytest.fixture()
def store() -> FakeShipmentStore:
    store = FakeShipmentStore(
        stock={"BOOK-1": StockLevel("BOOK-1", on_hand=8), "PEN-1": StockLevel("PEN-1", on_hand=1)}
    )
    store.schedule(ORDER, [("BOOK-1", 2), ("PEN-1", 1)], trace="00-trace-of-the-saga-01")
    return store


async def make(store: FakeShipmentStore, steps: tuple[CarrierStep, ...], order_id: str = ORDER) -> None:
    """The carrier makes `steps` on the order's shipment, in order."""
    for carrier_step in steps:
        await progress(store, order_id, carrier_step, by="carrier-1")


# The carrier's steps


async def test_shipping_a_scheduled_shipment_ships_its_reserved_units_and_emits_shipped_with_a_tracking_code(
    store: FakeShipmentStore,
) -> None:
    await make(store, steps_before(SHIP))

    events, traces = await progress(store, ORDER, SHIP, by="carrier-1")

    [shipped] = events
    assert shipped.type == "Shipped" and shipped.order_id == ORDER
    assert store.status(ORDER) == ShipmentStatus.SHIPPED
    tracking = store.shipments[ORDER].tracking_code
    assert tracking is not None and tracking.startswith("TRK-")
    assert shipped.payload["tracking_code"] == tracking
    assert store.stock["BOOK-1"] == StockLevel("BOOK-1", on_hand=8, reserved=0, shipped=2)
    assert store.stock["PEN-1"] == StockLevel("PEN-1", on_hand=1, reserved=0, shipped=1)
    assert traces == ["00-trace-of-the-saga-01"]  # the event continues the saga's trace


async def test_delivering_a_shipped_shipment_emits_delivered_keeps_its_tracking_code_and_moves_no_stock(
    store: FakeShipmentStore,
) -> None:
    await make(store, steps_before(DELIVER))
    tracking, stock = store.shipments[ORDER].tracking_code, dict(store.stock)
    store.locked_skus.clear()

    [delivered], _ = await progress(store, ORDER, DELIVER, by="carrier-1")

    assert delivered.type == "Delivered"
    assert store.status(ORDER) == ShipmentStatus.DELIVERED
    assert store.shipments[ORDER].tracking_code == tracking
    assert store.stock == stock and store.locked_skus == []  # no stock row locked


async def test_each_step_records_who_made_it_in_its_own_column(store: FakeShipmentStore) -> None:
    for number, carrier_step in enumerate(CARRIER_STEPS):
        await progress(store, ORDER, carrier_step, by=f"carrier-{number}")

    assert store.made_by[ORDER] == {
        STEPS[carrier_step].made_by: f"carrier-{number}" for number, carrier_step in enumerate(CARRIER_STEPS)
    }


async def test_a_step_made_again_is_answered_with_no_event_and_changes_nothing(
    store: FakeShipmentStore,
) -> None:
    await make(store, steps_through(SHIP))
    before = (store.shipments[ORDER], dict(store.stock), dict(store.made_by[ORDER]))

    assert await progress(store, ORDER, SHIP, by="carrier-2") == ([], [])
    assert (store.shipments[ORDER], dict(store.stock), dict(store.made_by[ORDER])) == before


async def test_a_step_out_of_order_is_refused_and_changes_nothing(store: FakeShipmentStore) -> None:
    with pytest.raises(ShipmentConflict, match="o-1: shipment is SCHEDULED; deliver needs SHIPPED"):
        await progress(store, ORDER, DELIVER, by="carrier-1")

    assert store.status(ORDER) == ShipmentStatus.SCHEDULED
    assert store.stock["BOOK-1"] == StockLevel("BOOK-1", on_hand=8, reserved=2) and ORDER not in store.made_by


async def test_a_step_on_an_order_without_a_shipment_is_not_found(store: FakeShipmentStore) -> None:
    with pytest.raises(ShipmentNotFound, match="shipment for order o-2 not found"):
        await progress(store, saga_id("acme", "o-2"), SHIP, by="carrier-1")


async def test_another_shops_carrier_does_not_find_the_shipment(store: FakeShipmentStore) -> None:
    with pytest.raises(ShipmentNotFound):
        await progress(store, saga_id("globex", "o-1"), SHIP, by="globex-carrier")

    assert store.status(ORDER) == ShipmentStatus.SCHEDULED


async def test_shipping_locks_each_sku_of_its_lines_once_in_sku_order(store: FakeShipmentStore) -> None:
    store.schedule(saga_id("acme", "o-2"), [("PEN-1", 1), ("BOOK-1", 1), ("PEN-1", 2)])
    await make(store, steps_before(SHIP), saga_id("acme", "o-2"))
    store.locked_skus.clear()

    await progress(store, saga_id("acme", "o-2"), SHIP, by="carrier-1")

    assert store.locked_skus == [["BOOK-1", "PEN-1"]]
    assert store.stock["PEN-1"].shipped == 3


# The answer to a cancel


async def test_a_cancel_before_pickup_releases_the_reservation_and_confirms_with_the_lines(
    store: FakeShipmentStore,
) -> None:
    answer = await apply_cancel(store, ORDER)

    assert isinstance(answer, CancellationConfirmed)
    assert [(line.sku, line.quantity) for line in answer.released] == [("BOOK-1", 2), ("PEN-1", 1)]
    assert store.status(ORDER) == ShipmentStatus.RELEASED
    assert store.stock["BOOK-1"] == StockLevel("BOOK-1", on_hand=10, reserved=0)
    assert store.stock["PEN-1"] == StockLevel("PEN-1", on_hand=2, reserved=0)


@pytest.mark.parametrize("steps", [steps_through(SHIP), steps_through(DELIVER)], ids=["shipped", "delivered"])
async def test_a_cancel_after_pickup_is_refused_with_the_status_and_tracking_code(
    store: FakeShipmentStore, steps: tuple[CarrierStep, ...]
) -> None:
    await make(store, steps)
    stock = dict(store.stock)

    answer = await apply_cancel(store, ORDER)

    assert answer == CancellationRefused(
        shipment_status=STEPS[steps[-1]].reached.value, tracking_code=store.shipments[ORDER].tracking_code
    )
    assert store.status(ORDER) == STEPS[steps[-1]].reached and store.stock == stock


async def test_a_cancel_before_the_order_is_seen_is_confirmed_and_remembered(
    store: FakeShipmentStore,
) -> None:
    early = saga_id("acme", "o-early")

    assert await apply_cancel(store, early) == CancellationConfirmed()

    assert store.status(early) == ShipmentStatus.CANCELLED and store.shipments[early].lines == []


@pytest.mark.parametrize(
    "status", [ShipmentStatus.RELEASED, ShipmentStatus.OUT_OF_STOCK, ShipmentStatus.CANCELLED]
)
async def test_a_cancel_of_a_shipment_that_holds_nothing_is_confirmed_and_changes_nothing(
    store: FakeShipmentStore, status: ShipmentStatus
) -> None:
    store.shipments[ORDER] = Shipment(ORDER, status.value, [], None, None)
    stock = dict(store.stock)
    store.locked_skus.clear()

    assert await apply_cancel(store, ORDER) == CancellationConfirmed()

    assert store.status(ORDER) == status and store.stock == stock and store.locked_skus == []


async def test_a_second_cancel_confirms_without_releasing_twice(store: FakeShipmentStore) -> None:
    await apply_cancel(store, ORDER)
    stock = dict(store.stock)

    assert await apply_cancel(store, ORDER) == CancellationConfirmed()
    assert store.stock == stock


async def test_a_ship_after_the_cancel_released_the_shipment_is_refused(store: FakeShipmentStore) -> None:
    await apply_cancel(store, ORDER)

    with pytest.raises(
        ShipmentConflict, match=f"shipment is RELEASED; ship needs {STEPS[SHIP].required.value}"
    ):
        await progress(store, ORDER, SHIP, by="carrier-1")
