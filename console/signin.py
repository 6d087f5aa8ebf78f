"""Signing in with the operator API key, and out.

The key typed into the form is checked against the services (console/backend.py) before anything is
kept; only then does the browser get a session cookie, holding an opaque id, never the key. The form
itself carries a double-submit token, so another site cannot sign the operator's browser in under a key
of its choosing.
"""

from __future__ import annotations

from aiohttp import web

from console.backend import check_operator_key
from console.guard import see_other
from console.keys import SESSIONS, SETTINGS
from console.rendering import render
from console.sessions import COOKIE, CSRF_FIELD, SIGN_IN_COOKIE, cookie_attributes, new_token, tokens_match


def _secure(request: web.Request) -> bool:
    """Cookies are Secure when the console's public URL is https (behind a TLS proxy)."""
    return request.app[SETTINGS].console_base_url().startswith("https://")


def _sign_in_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    # The token the browser already holds is kept: a second load of this page (another tab, a request
    # the browser makes on its own) must not invalidate a form already shown.
    token = request.cookies.get(SIGN_IN_COOKIE) or new_token()
    response = render(request, "signin.html", http_status=status, error=error, csrf=token, signed_in=False)
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, **cookie_attributes(_secure(request)))  # type: ignore[arg-type]
    return response


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if request.app[SESSIONS].find(request.cookies.get(COOKIE)) is not None:
        return see_other("/")
    return _sign_in_page(request)


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    presented = form.get(CSRF_FIELD)
    if not tokens_match(
        request.cookies.get(SIGN_IN_COOKIE), presented if isinstance(presented, str) else None
    ):
        return _sign_in_page(request, "The sign-in form had expired; enter the key again.", status=403)
    key = form.get("api_key")
    key = key.strip() if isinstance(key, str) else ""
    refused = await check_operator_key(request.app[SETTINGS], key)
    if refused is not None:
        return _sign_in_page(request, refused, status=401)
    session_id, _ = request.app[SESSIONS].start(key)
    response = see_other("/")
    response.set_cookie(COOKIE, session_id, **cookie_attributes(_secure(request)))  # type: ignore[arg-type]
    response.del_cookie(SIGN_IN_COOKIE, path="/")
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """Ends the session (the guard checked its CSRF token)."""
    request.app[SESSIONS].end(request.cookies.get(COOKIE))
    response = see_other("/sign-in")
    response.del_cookie(COOKIE, path="/")
    return response


def register(router: web.UrlDispatcher) -> None:
    router.add_get("/sign-in", sign_in_form)
    router.add_post("/sign-in", sign_in)
    router.add_post("/sign-out", sign_out)
