"""An order that ships and arrives: charged once, stock taken, the saga's events in order."""


def test_a_paid_order_ships_arrives_and_completes(
    checkout, saga, saga_stock, saga_carrier, saga_events, assert_saga_consistent
):
    book = saga_stock(10)

    accepted = checkout((book, 2))
    assert accepted.status == "CAPTURED"

    saga_carrier.deliver(accepted.order_id)  # the carrier picks the parcel up and delivers it
    order = saga.wait_for(accepted.order_id)  # until the saga ends (backoff, no busy polling)

    assert order.status == "COMPLETED"
    assert order.amount.amount_minor == 2 * 1999
    saga_events.wait_for("OrderCompleted", order_id=accepted.order_id)
    assert saga_events.types(accepted.order_id) == [
        "PaymentCompleted",
        "OrderPlaced",
        "DeliveryScheduled",
        "Shipped",
        "Delivered",
        "OrderCompleted",
    ]
    assert saga.stock(book).shipped == 2
    assert_saga_consistent()
