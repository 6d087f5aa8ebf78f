"""The console's door: sign in with an operator key the services accept, a session cookie that is not
the key, every page behind it, every action behind the session's CSRF token.

The services are faked by a small aiohttp app that accepts one operator key (and knows a shop's key
without the operator scope), so these run without Kafka or PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.config import Settings
from console.app import create_app
from console.sessions import COOKIE, SIGN_IN_COOKIE

RETRIED = web.AppKey("retried", list[str])
OPERATOR_KEY = "operator-key-0123456789"
SHOP_KEY = "shop-key-0123456789"


def fake_services() -> web.Application:
    """An order service that answers the console's sign-in check and a dead letter's retry."""
    retried: list[str] = []

    def caller(request: web.Request) -> str | None:
        return {f"Bearer {OPERATOR_KEY}": "operator", f"Bearer {SHOP_KEY}": "shop"}.get(
            request.headers.get("Authorization", "")
        )

    async def dead_letters(request: web.Request) -> web.Response:
        who = caller(request)
        if who is None:
            return web.json_response({"error": "unauthenticated", "message": "no such key"}, status=401)
        if who != "operator":
            return web.json_response({"error": "forbidden", "message": "needs operator"}, status=403)
        return web.json_response({"items": [], "limit": 1, "offset": 0})

    async def retry(request: web.Request) -> web.Response:
        if caller(request) != "operator":
            return web.json_response({"error": "forbidden", "message": "needs operator"}, status=403)
        retried.append(request.match_info["letter_id"])
        return web.json_response(
            {"results": [{"id": int(request.match_info["letter_id"]), "outcome": "applied"}]}
        )

    app = web.Application()
    app[RETRIED] = retried
    app.router.add_get("/dead-letters", dead_letters)
    app.router.add_post("/dead-letters/{letter_id}/retry", retry)
    return app


@dataclass
class Console:
    client: TestClient[web.Request, web.Application]
    services: TestServer

    async def sign_in(self, key: str) -> tuple[int, str]:
        form = await self.client.get("/sign-in")
        token = csrf_of(await form.text())
        response = await self.client.post(
            "/sign-in", data={"csrf_token": token, "api_key": key}, allow_redirects=False
        )
        return response.status, await response.text()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture()
async def console() -> AsyncIterator[Console]:
    services = TestServer(fake_services())
    await services.start_server()
    settings = Settings.model_validate({"ORDER_URL": str(services.make_url("")).rstrip("/")})
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        yield Console(client, services)
    finally:
        await client.close()
        await services.close()


async def test_every_page_and_action_without_a_session_goes_to_sign_in(console: Console) -> None:
    for path in ("/", "/overview/live", "/orders/acme:1", "/dead-letters", "/refunds", "/stock", "/search"):
        response = await console.client.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/sign-in"), path
    action = await console.client.post("/dead-letters/order/1/retry", allow_redirects=False)
    assert action.status == 303 and action.headers["Location"] == "/sign-in"
    assert console.services.app[RETRIED] == []
    polled = await console.client.get("/overview/live", headers={"HX-Request": "true"}, allow_redirects=False)
    assert polled.headers["HX-Redirect"] == "/sign-in"  # htmx navigates instead of swapping a form in


async def test_a_wrong_key_is_refused_with_a_clear_message_and_no_session(console: Console) -> None:
    status, page = await console.sign_in("not-a-key")
    assert status == 401 and "The services do not know this key" in page
    assert COOKIE not in console.client.session.cookie_jar.filter_cookies(console.client.make_url("/"))
    status, page = await console.sign_in(SHOP_KEY)
    assert status == 401 and "no operator scope" in page


async def test_an_operator_key_signs_in_with_an_opaque_httponly_samesite_strict_cookie(
    console: Console,
) -> None:
    form = await console.client.get("/sign-in")
    token = csrf_of(await form.text())
    response = await console.client.post(
        "/sign-in", data={"csrf_token": token, "api_key": OPERATOR_KEY}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.cookies[COOKIE]
    assert OPERATOR_KEY not in cookie.value and len(cookie.value) >= 40
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # served over http here; CONSOLE_URL=https://… makes it Secure


async def test_the_sign_in_form_needs_its_own_token(console: Console) -> None:
    await console.client.get("/sign-in")
    response = await console.client.post(
        "/sign-in", data={"csrf_token": "forged", "api_key": OPERATOR_KEY}, allow_redirects=False
    )
    assert response.status == 403 and "expired" in await response.text()
    assert COOKIE not in response.cookies
    assert SIGN_IN_COOKIE in response.cookies  # a fresh form to try again


async def test_loading_the_sign_in_page_again_keeps_the_form_already_shown_valid(console: Console) -> None:
    first = csrf_of(await (await console.client.get("/sign-in")).text())
    await console.client.get("/favicon.ico")  # what a browser asks for on its own
    second = csrf_of(await (await console.client.get("/sign-in")).text())
    assert first == second
    response = await console.client.post(
        "/sign-in", data={"csrf_token": first, "api_key": OPERATOR_KEY}, allow_redirects=False
    )
    assert response.status == 303


async def test_an_action_without_the_sessions_csrf_token_is_forbidden_and_with_it_acts(
    console: Console,
) -> None:
    assert (await console.sign_in(OPERATOR_KEY))[0] == 303
    forged = await console.client.post(
        "/dead-letters/order/5/retry", data={"csrf_token": "guess", "next": "/"}, allow_redirects=False
    )
    assert forged.status == 403
    assert console.services.app[RETRIED] == []

    page = await console.client.get("/search")
    token = csrf_of(await page.text())
    done = await console.client.post(
        "/dead-letters/order/5/retry",
        data={"csrf_token": token, "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/dead-letters"  # never off the console
    assert console.services.app[RETRIED] == ["5"]
    shown = await (await console.client.get("/search")).text()
    assert "retry order #5: #5 applied" in shown


async def test_signing_out_ends_the_session(console: Console) -> None:
    await console.sign_in(OPERATOR_KEY)
    token = csrf_of(await (await console.client.get("/search")).text())
    out = await console.client.post("/sign-out", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/sign-in"
    again = await console.client.get("/search", allow_redirects=False)
    assert again.status == 303


async def test_pages_forbid_framing_and_foreign_scripts_and_htmx_is_served(console: Console) -> None:
    page = await console.client.get("/sign-in")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    script = await console.client.get("/static/htmx.min.js")
    assert script.status == 200 and "htmx 2." in (await script.text())[:200]
