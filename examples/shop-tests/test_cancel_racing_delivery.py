"""The customer cancels while the carrier picks the parcel up. Shipping is the pivot: exactly one of the
two wins, and a parcel that shipped is never refunded."""

import time
from concurrent.futures import ThreadPoolExecutor

from saga_client import NotCancellable, WrongState
from saga_client.models import CARRIER_STEPS

# The carrier's steps before it picks the parcel up (`ship`): each parcel is taken through them first, so
# the race is between the cancel and the pickup itself.
STEPS = [step.name for step in CARRIER_STEPS]
BEFORE_PICKUP = STEPS[: STEPS.index("ship")]


def attempt(step):
    try:
        return step()
    except (NotCancellable, WrongState) as refused:
        return refused


def with_the_cancel_answered(saga, order_id, timeout=10.0):
    """The order once delivery's answer to its cancel has reached it. A parcel that shipped may be
    delivered before delivery answers the cancel, so the order can complete while its cancellation is
    still `requested`; delivery's refusal follows."""
    deadline = time.monotonic() + timeout
    order = saga.order(order_id)
    while order.cancellation is not None and order.cancellation.status == "requested":
        assert time.monotonic() < deadline, f"delivery never answered the cancel of {order_id}"
        time.sleep(0.1)
        order = saga.order(order_id)
    return order


def test_a_cancel_racing_the_carrier_either_refunds_an_unshipped_parcel_or_completes_a_shipped_one(
    checkout, saga, saga_stock, saga_carrier, saga_events, assert_saga_consistent
):
    book = saga_stock(10)
    orders = [checkout((book, 1)).order_id for _ in range(3)]
    for order_id in orders:
        saga.wait_for(order_id, {"SCHEDULED", "SHIPPED", "COMPLETED"})  # delivery reserved the parcel
        for step in BEFORE_PICKUP:
            saga_carrier.through(order_id, step)

    with ThreadPoolExecutor(6) as pool:
        races = [
            (pool.submit(attempt, lambda o=o: saga.cancel(o)), pool.submit(attempt, lambda o=o: saga.ship(o)))
            for o in orders
        ]
    for order_id, (cancel, ship) in zip(orders, races, strict=True):
        if not isinstance(ship.result(), WrongState):
            saga_carrier.deliver(order_id)  # the parcel left: it is delivered
        order = saga.wait_for(order_id)
        payment = saga.payment(order_id)
        if order.status == "REFUNDED":  # the cancel won: nothing shipped, the money went back
            assert order.cancellation.status == "confirmed"
            assert saga.shipment(order_id).status == "RELEASED"
            assert not saga_events.published("Shipped", order_id=order_id)
        else:  # the parcel won: it arrives, the money is kept, the cancel is refused
            assert order.status == "COMPLETED"
            assert payment.refund is None
            order = with_the_cancel_answered(saga, order_id)
            assert isinstance(cancel.result(), NotCancellable) or order.cancellation.status == "refused"
    assert_saga_consistent()
