"""The console's composition root: `create_app(settings)` builds the aiohttp application (nothing runs
until it is served; importing this module starts nothing)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from common.config import Settings
from common.span_store import TRACES_PATH, SpanStore
from console import actions, pages, signin, traces
from console.guard import require_session, security_headers
from console.keys import RATES, SESSIONS, SETTINGS, SPANS, TEMPLATES
from console.rates import Rates
from console.rendering import templates
from console.sessions import SessionStore

STATIC = Path(__file__).parent / "static"


async def readyz(request: web.Request) -> web.Response:
    """The console answers (what `saga run` waits for); the services' own readiness is on the overview."""
    return web.json_response({"ready": True, "service": "console"})


def create_app(settings: Settings, sessions: SessionStore | None = None) -> web.Application:
    app = web.Application(middlewares=[security_headers, require_session])
    app[SETTINGS] = settings
    app[SESSIONS] = sessions if sessions is not None else SessionStore()
    app[TEMPLATES] = templates()
    app[RATES] = Rates()
    app.router.add_get("/readyz", readyz)
    app.router.add_static("/static/", STATIC)
    signin.register(app.router)
    pages.register(app.router)
    actions.register(app.router)
    if settings.console_traces:
        app[SPANS] = SpanStore()
        app.router.add_post(TRACES_PATH, traces.receive)
    return app
