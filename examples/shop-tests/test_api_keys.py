"""The shop's API key does what a shop does, and no more: counting stock is the operator's."""

import pytest

from saga_client import Forbidden, Role


def test_the_shops_key_reads_stock_but_may_not_count_it(saga, saga_platform, saga_stock):
    book = saga_stock(3)  # the plugin counts stock with the operator's key

    with saga_platform.client(acting_as=Role.SHOP) as shop:  # every call with the shop's key
        assert shop.stock(book).on_hand == 3
        with pytest.raises(Forbidden) as refused:
            shop.set_stock(book, 1000)

    assert refused.value.http_status == 403  # refused, and nothing changed
    assert saga.stock(book).on_hand == 3
