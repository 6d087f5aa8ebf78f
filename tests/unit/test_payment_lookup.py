"""When the order service cannot ask payment about a checkout, the shop is told so (a 503 to retry), but
not why: the error's hosts and ports, or the order service's own key trouble, go to the log."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from common.errors import Unavailable
from order.payment_lookup import HttpPaymentLookup
from saga_tools.local_stack.ports import free_port


async def test_an_unreachable_payment_service_is_unavailable_without_its_address_or_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    lookup = HttpPaymentLookup(f"http://127.0.0.1:{port}", api_key=None, timeout=1.0)

    with caplog.at_level(logging.WARNING), pytest.raises(Unavailable) as caught:
        await lookup.accepted_checkout("o-1")

    told = caught.value.body()["message"]
    assert told == "the payment service cannot be asked about order o-1 now; retry later"
    assert "ConnectError" in caplog.text and "o-1" in caplog.text


@pytest.mark.parametrize(("status", "logged"), [(401, "ORDER_PAYMENT_API_KEY"), (500, "answered 500")])
async def test_a_refusal_or_an_error_of_payment_is_unavailable_and_its_reason_logged(
    status: int, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"error": "x", "message": "x"}, status=status)

    app = web.Application()
    app.router.add_get("/payments/{order_id}", answer)
    async with TestServer(app) as server:
        lookup = HttpPaymentLookup(str(server.make_url("")), api_key="saga_wrong")
        with caplog.at_level(logging.WARNING), pytest.raises(Unavailable) as caught:
            await lookup.accepted_checkout("o-2")

    assert (
        caught.value.body()["message"]
        == "the payment service cannot be asked about order o-2 now; retry later"
    )
    assert logged in caplog.text
