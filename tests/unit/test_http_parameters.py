"""Bad input gets a 4xx with a message before any handler (hence any SQL) runs; good input arrives typed."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from common.openapi import MAX_JSON_DEPTH, Route
from common.params import BIGINT_MAX
from common.shared_api import DEAD_LETTER, DEAD_LETTERS, LetterStatusFilter
from common.web import ApiError, json_routing_errors, nested_deeper_than, parse_body, route_arguments
from delivery.api import SET_STOCK, StockUpdate
from order.api import CANCEL, LIST
from order.saga import OrderStatus
from payment.api import CHECKOUT, PAYMENT

KEY = {"Idempotency-Key": "a-key"}


async def arguments(
    route: Route, path: str, match_info: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    request = make_mocked_request(route.method, path, headers=headers or {}, match_info=match_info or {})
    return await route_arguments(route, request)


async def refusal(
    route: Route, path: str, match_info: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await arguments(route, path, match_info, headers)
    return caught.value


BAD_PATH_PARAMETERS = [
    pytest.param(CANCEL, "order_id", "\x00", id="nul-in-order-id"),
    pytest.param(CANCEL, "order_id", "a" * 65, id="order-id-too-long"),
    pytest.param(CANCEL, "order_id", "", id="order-id-empty"),
    pytest.param(PAYMENT, "order_id", "a/b", id="slash-in-order-id"),
    pytest.param(PAYMENT, "order_id", "ordér", id="non-ascii-order-id"),
    pytest.param(PAYMENT, "order_id", "%FF", id="undecodable-order-id"),
    pytest.param(PAYMENT, "order_id", "abc\n", id="newline-after-order-id"),
    pytest.param(SET_STOCK, "sku", "sku with spaces", id="space-in-sku"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "abc", id="dead-letter-id-not-a-number"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "1.5", id="dead-letter-id-fraction"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "0", id="dead-letter-id-zero"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "-1", id="dead-letter-id-negative"),
    pytest.param(DEAD_LETTER, "dead_letter_id", str(BIGINT_MAX + 1), id="dead-letter-id-past-bigint"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "9" * 5000, id="dead-letter-id-of-5000-digits"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "+5", id="dead-letter-id-with-plus"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "1_000", id="dead-letter-id-with-underscore"),
    pytest.param(DEAD_LETTER, "dead_letter_id", "\x00", id="nul-as-dead-letter-id"),
]


@pytest.mark.parametrize(("route", "name", "value"), BAD_PATH_PARAMETERS)
async def test_a_bad_path_parameter_is_a_400_naming_it(route: Route, name: str, value: str) -> None:
    error = await refusal(route, "/anything", {name: value}, KEY)

    assert error.status == 400
    assert error.error == "invalid_parameter"
    assert f"path.{name}" in error.message
    assert [field["field"] for field in error.extra["fields"]] == [f"path.{name}"]


BAD_QUERIES = [
    pytest.param(LIST, "limit=0", "query.limit", id="limit-zero"),
    pytest.param(LIST, "limit=501", "query.limit", id="limit-past-its-maximum"),
    pytest.param(LIST, "limit=ten", "query.limit", id="limit-not-a-number"),
    pytest.param(LIST, "limit=", "query.limit", id="limit-empty"),
    pytest.param(LIST, "limit=%2010", "query.limit", id="limit-with-a-space"),
    pytest.param(LIST, "limit=5&limit=6", "query.limit", id="limit-given-twice"),
    pytest.param(LIST, "offset=-1", "query.offset", id="offset-negative"),
    pytest.param(LIST, "offset=99999999999999999999999", "query.offset", id="offset-huge"),
    pytest.param(LIST, "status=NOPE", "query.status", id="status-unknown"),
    pytest.param(LIST, "status=%00", "query.status", id="status-nul"),
    pytest.param(LIST, "status=placed", "query.status", id="status-lower-case"),
    pytest.param(LIST, "stuck_for=-5", "query.stuck_for", id="stuck-for-negative"),
    pytest.param(LIST, "stuck_for=1e3", "query.stuck_for", id="stuck-for-exponent"),
    pytest.param(DEAD_LETTERS, "order_id=%00", "query.order_id", id="dead-letters-nul-order-id"),
    pytest.param(DEAD_LETTERS, "status=dead", "query.status", id="dead-letters-unknown-status"),
    pytest.param(DEAD_LETTERS, "limit=1001", "query.limit", id="dead-letters-limit-past-its-maximum"),
]


@pytest.mark.parametrize(("route", "query", "field"), BAD_QUERIES)
async def test_a_bad_query_parameter_is_a_400_naming_it(route: Route, query: str, field: str) -> None:
    error = await refusal(route, f"{route.path}?{query}")

    assert error.status == 400
    assert error.error == "invalid_parameter"
    assert field in error.message
    assert field in [entry["field"] for entry in error.extra["fields"]]


BAD_KEYS = [
    pytest.param({}, id="missing"),
    pytest.param({"Idempotency-Key": ""}, id="empty"),
    pytest.param({"Idempotency-Key": "k" * 201}, id="too-long"),
    pytest.param({"Idempotency-Key": "a\x01b"}, id="control-character"),
    pytest.param({"Idempotency-Key": "ключ"}, id="not-ascii"),
    pytest.param({"Idempotency-Key": " padded "}, id="spaces-around"),
]


@pytest.mark.parametrize("headers", BAD_KEYS)
async def test_a_bad_idempotency_key_is_a_400_naming_the_header(headers: dict[str, str]) -> None:
    error = await refusal(CHECKOUT, "/checkout", headers=headers)

    assert error.status == 400
    assert "header.Idempotency-Key" in error.message


async def test_valid_parameters_arrive_validated_and_typed() -> None:
    assert await arguments(DEAD_LETTER, "/dead-letters/42", {"dead_letter_id": "42"}) == {
        "dead_letter_id": 42
    }
    assert await arguments(CANCEL, "/orders/ord-1_A/cancel", {"order_id": "ord-1_A"}) == {
        "order_id": "ord-1_A"
    }

    query = (await arguments(LIST, "/orders?status=PLACED&stuck_for=0&unknown=ignored"))["query"]
    assert (query.status, query.stuck_for, query.limit, query.offset) == (OrderStatus.PLACED, 0, 50, 0)

    letters = (await arguments(DEAD_LETTERS, "/dead-letters?limit=1000"))["query"]
    assert (letters.status, letters.limit, letters.order_id) == (LetterStatusFilter.PARKED, 1000, None)


async def test_a_key_with_inner_spaces_passes_and_the_body_is_checked_after_the_headers() -> None:
    request = make_mocked_request("POST", "/checkout", headers={"Idempotency-Key": "order 42/try 1"})
    request.read = _reader(b'{"customer_id": "c"}')  # the header is checked before the body

    with pytest.raises(ApiError) as caught:
        await route_arguments(CHECKOUT, request)

    assert caught.value.status == 422  # the header passed; the body did not


class _Body:
    def __init__(self, raw: bytes | Exception) -> None:
        self.raw = raw

    async def read(self) -> bytes:
        if isinstance(self.raw, Exception):
            raise self.raw
        return self.raw


def _reader(raw: bytes) -> Any:
    async def read() -> bytes:
        return raw

    return read


TOO_LARGE = web.HTTPRequestEntityTooLarge(max_size=1, actual_size=2)
BAD_BODIES = [
    pytest.param(b"", 400, "empty_body", id="empty"),
    pytest.param(b"{not json", 400, "malformed_json", id="not-json"),
    pytest.param(b"\xff\xfe{}", 400, "malformed_json", id="not-utf-8"),
    pytest.param(b'{"on_hand": NaN}', 400, "malformed_json", id="nan"),
    pytest.param(b"[" * 100_000, 400, "malformed_json", id="nested-too-deep-for-the-parser"),
    pytest.param(b'{"on_hand": ' + b"9" * 5000 + b"}", 400, "malformed_json", id="integer-of-5000-digits"),
    pytest.param(b'{"on_hand": 1, "note": "\\ud800"}', 400, "malformed_json", id="unpaired-surrogate"),
    pytest.param(b"[1]", 422, "validation_failed", id="not-an-object"),
    pytest.param(b'{"on_hand": false}', 422, "validation_failed", id="boolean-for-integer"),
    pytest.param(b'{"on_hand": "5"}', 422, "validation_failed", id="string-for-integer"),
    pytest.param(b'{"on_hand": 5.5}', 422, "validation_failed", id="fraction-for-integer"),
    pytest.param(b'{"on_hand": -1}', 422, "validation_failed", id="negative"),
    pytest.param(b'{"on_hand": 5, "extra": 1}', 422, "validation_failed", id="unknown-field"),
    pytest.param(
        web.HTTPRequestEntityTooLarge(max_size=1, actual_size=2), 413, "body_too_large", id="too-large"
    ),
]


@pytest.mark.parametrize(("raw", "status", "error"), BAD_BODIES)
async def test_a_bad_body_is_a_4xx_with_a_message(raw: bytes | Exception, status: int, error: str) -> None:
    with pytest.raises(ApiError) as caught:
        await parse_body(_Body(raw), StockUpdate)

    assert (caught.value.status, caught.value.error) == (status, error)
    assert caught.value.message


async def test_a_body_nested_600_deep_is_refused_by_its_depth_before_anything_recurses_into_it() -> None:
    raw = b'{"on_hand": 1, "note": ' + b"[" * 600 + b"]" * 600 + b"}"  # 1.2 KB, parsed without trouble

    with pytest.raises(ApiError) as caught:
        await parse_body(_Body(raw), StockUpdate)

    assert caught.value.message == f"the body is nested deeper than {MAX_JSON_DEPTH} levels"
    assert caught.value.__cause__ is None  # refused by the check, not by a RecursionError


def _nested(levels: int) -> Any:
    document: Any = 1
    for level in range(levels):
        document = [document] if level % 2 else {"a": document}
    return document


def test_a_document_may_be_nested_up_to_the_limit_and_not_one_level_more() -> None:
    assert not nested_deeper_than(_nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)
    assert nested_deeper_than(_nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
    assert not nested_deeper_than("a scalar", 0)
    assert nested_deeper_than([[], {"deep": [[[]]]}], 4) and not nested_deeper_than([[], {"deep": [[[]]]}], 5)


async def test_a_body_number_without_fraction_is_the_integer_json_schema_says_it_is() -> None:
    assert (await parse_body(_Body(b'{"on_hand": 5.0}'), StockUpdate)).on_hand == 5


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({})


async def test_an_unknown_path_or_method_answers_our_json_error_with_allow() -> None:
    app = web.Application(middlewares=[json_routing_errors])
    app.router.add_post("/things", _ok)
    async with TestClient(TestServer(app)) as client:
        unknown = await client.get("/nothing")
        wrong_method = await client.delete("/things")

        assert (unknown.status, (await unknown.json())["error"]) == (404, "not_found")
        assert (wrong_method.status, (await wrong_method.json())["error"]) == (405, "method_not_allowed")
        assert wrong_method.headers["Allow"] == "POST"
