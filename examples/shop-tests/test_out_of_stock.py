"""Delivery cannot reserve every line: the order is cancelled and the whole payment refunded, once."""


def test_an_order_out_of_stock_is_refunded_in_full_and_takes_no_stock(
    checkout, saga, saga_stock, saga_events, assert_saga_consistent
):
    plenty, scarce = saga_stock(10), saga_stock(1)

    accepted = checkout((plenty, 1), (scarce, 2))
    order = saga.wait_for(accepted.order_id)

    assert order.status == "REFUNDED"
    assert order.cancel_reason == "out_of_stock"
    refund = saga.payment(accepted.order_id).refund
    assert refund is not None and refund.status == "SUCCEEDED"
    assert refund.amount.amount_minor == 3 * 1999
    assert saga_events.published("OrderCancelled", order_id=accepted.order_id, reason="out_of_stock")
    assert saga.shipment(accepted.order_id).short[0].sku == scarce
    assert saga.stock(plenty).on_hand == 10
    assert_saga_consistent()
