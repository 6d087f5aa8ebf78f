"""A refund the payment provider keeps refusing: retried with backoff, then a visible REFUND_FAILED, and
the operator's retry tries again (here the card refuses every refund, so it fails again, visibly)."""


def test_a_refund_that_keeps_failing_is_visible_and_an_operator_retry_tries_it_again(
    checkout, saga, saga_stock, saga_events, assert_saga_consistent
):
    scarce = saga_stock(0)
    accepted = checkout((scarce, 1), card="tok_refund_fails")  # out of stock: the money must go back

    order = saga.wait_for(accepted.order_id, timeout=60)
    assert order.status == "REFUND_FAILED"
    assert saga.payment(accepted.order_id).refund.status == "FAILED"
    saga_events.wait_for("PaymentRefundFailed", order_id=accepted.order_id)

    queued = saga.retry_refund(accepted.order_id)  # the operator, once the provider is fixed
    assert queued.status == "PENDING"

    saga_events.wait_for("PaymentRefundFailed", order_id=accepted.order_id, count=2, timeout=60)
    assert saga.wait_for(accepted.order_id).status == "REFUND_FAILED"
    assert_saga_consistent()  # the money kept is counted as a failed refund, not lost
