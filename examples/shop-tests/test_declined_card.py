"""A declined card: nothing charged, the order rejected, nothing reaches delivery, nothing to cancel."""

import pytest

from saga_client import NotCancellable, NotFound


def test_a_declined_card_rejects_the_order_and_nothing_ships(
    checkout, saga, saga_stock, assert_saga_consistent
):
    book = saga_stock(5)

    accepted = checkout((book, 1), card="tok_declined")
    assert accepted.status == "DECLINED"

    assert saga.wait_for(accepted.order_id).status == "REJECTED"
    with pytest.raises(NotFound):
        saga.shipment(accepted.order_id)
    with pytest.raises(NotCancellable) as refused:
        saga.cancel(accepted.order_id)
    assert refused.value.status == "REJECTED"
    assert saga.stock(book).on_hand == 5
    assert_saga_consistent()
