"""Who may see and do what: every page and action needs a signed-in session, every action a CSRF token.

The rules: a request without a live session goes to the sign-in page (an htmx request is told to
navigate there, since swapping a sign-in form into a fragment would be nonsense); a POST must carry the
session's CSRF token in its form (the SameSite=Strict cookie already keeps other sites' requests out; the
token holds even where a browser ignores SameSite); a key the services stop accepting (revoked while
signed in) ends the session. Every answer forbids framing and caching, and scripts from elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from common.service_apis import Refused
from console.keys import SESSION, SESSIONS
from console.sessions import COOKIE, CSRF_FIELD, tokens_match

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# /v1/traces: the services' exporters post their spans there (when the console receives traces).
PUBLIC_PREFIXES = ("/sign-in", "/readyz", "/static/", "/favicon.ico", "/v1/traces")
SIGN_IN = "/sign-in"
SECURITY_HEADERS = {
    # htmx is served from here; it adds one inline style for its indicators, hence style-src.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_public(path: str) -> bool:
    """Paths served without a session: the sign-in page, readiness, the static script and style, and the
    icon browsers ask for on their own (404: sending that request to sign-in would load the sign-in
    page once more behind the operator's back)."""
    return any(path == prefix or path.startswith(prefix) for prefix in PUBLIC_PREFIXES)


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def to_sign_in(request: web.Request) -> web.StreamResponse:
    """Send the browser to the sign-in page: htmx through its redirect header, a page with a 303."""
    if is_htmx(request):
        return web.Response(status=200, headers={"HX-Redirect": SIGN_IN})
    return see_other(SIGN_IN)


def see_other(location: str) -> web.Response:
    """A 303 to `location` (a local path), as a response that can carry cookies."""
    return web.Response(status=303, headers={"Location": location})


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not request.path.startswith("/static/"):
        response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def require_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public(request.path):
        return await handler(request)
    sessions = request.app[SESSIONS]
    session_id = request.cookies.get(COOKIE)
    session = sessions.find(session_id)
    if session is None:
        return to_sign_in(request)
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        presented = form.get(CSRF_FIELD)
        if not tokens_match(session.csrf_token, presented if isinstance(presented, str) else None):
            raise web.HTTPForbidden(text="This form is out of date or did not come from the console; reload")
    request[SESSION] = session
    try:
        return await handler(request)
    except Refused as exc:
        if exc.status != 401:
            raise
        sessions.end(session_id)  # the services no longer accept the key: sign in again
        return to_sign_in(request)
