"""The shop is told: every status change of its order reaches its webhook receiver, signed and in order,
and the shop's handler acts once per event, however often the platform sends it."""

import pytest
from webhook_handler import handle, handled

from saga_client import InvalidSignature


def test_a_shipped_order_is_told_to_the_shop_in_order_and_its_handler_acts_once(
    checkout, saga, saga_stock, saga_carrier, saga_webhooks, capsys
):
    book = saga_stock(5)
    order_id = checkout((book, 1)).order_id

    saga_carrier.deliver(order_id)
    saga_webhooks.wait_for(order_id, "order.completed")

    saga_webhooks.assert_in_order(order_id)  # placed, scheduled, shipped, completed: sequence 1..4
    saga_webhooks.assert_all_verified()
    assert [e.type for e in saga_webhooks.events_of(order_id)] == [
        "order.placed",
        "order.scheduled",
        "order.shipped",
        "order.completed",
    ]
    secrets = saga_webhooks.secrets
    requests = [r for r in saga_webhooks.received() if r.order_id == order_id]
    for request in requests + requests:  # every request twice: as a retry would bring it again
        assert handle(request.body, request.header("Saga-Signature"), secrets) == 200
    assert capsys.readouterr().out == f"order {order_id}: order.shipped\n"
    assert {str(e.id) for e in saga_webhooks.events_of(order_id)} <= handled


def test_a_request_signed_with_another_secret_is_refused_by_the_handler(
    checkout, saga, saga_stock, saga_carrier, saga_webhooks
):
    order_id = checkout((saga_stock(5), 1)).order_id
    saga_webhooks.wait_for(order_id, "order.placed")
    request = saga_webhooks.received()[0]

    with pytest.raises(InvalidSignature):
        handle(request.body, request.header("Saga-Signature"), ["whsec_not-the-shops"])
    saga_carrier.deliver(order_id)
    saga.wait_for(order_id, "COMPLETED")
