"""The shop's call timed out: it does not know whether the customer was charged. It sends the same
checkout again with the same Idempotency-Key, and gets the one order there is."""

import uuid

import pytest

from saga_client import RetryPolicy, Unavailable


def test_the_same_checkout_retried_after_a_timeout_is_one_order_charged_once(
    checkout, saga, saga_stock, saga_carrier, assert_saga_consistent
):
    book = saga_stock(10)
    cart_id = uuid.uuid4().hex  # the shop's own cart: its order id and key survive a crash of the shop
    impatient = saga.with_options(timeout=0.001, retry=RetryPolicy(attempts=1))

    with pytest.raises(Unavailable) as timed_out:
        checkout((book, 1), client=impatient, order_id=f"order-{cart_id}", idempotency_key=f"cart-{cart_id}")
    impatient.close()
    assert timed_out.value.idempotency_key == f"cart-{cart_id}"

    accepted = checkout((book, 1), order_id=f"order-{cart_id}", idempotency_key=f"cart-{cart_id}")
    again = checkout((book, 1), order_id=f"order-{cart_id}", idempotency_key=f"cart-{cart_id}")

    assert accepted == again and accepted.order_id == f"order-{cart_id}"
    saga_carrier.deliver(accepted.order_id)
    assert saga.wait_for(accepted.order_id).status == "COMPLETED"
    assert saga.stock(book).shipped == 1  # one order, one parcel
    assert_saga_consistent()
