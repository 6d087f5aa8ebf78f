"""The keys under which the console's parts are kept on the aiohttp application and request."""

from __future__ import annotations

from aiohttp import web
from jinja2 import Environment

from common.config import Settings
from common.span_store import SpanStore
from console.rates import Rates
from console.sessions import Session, SessionStore

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", SessionStore)
TEMPLATES = web.AppKey("templates", Environment)
RATES = web.AppKey("rates", Rates)  # the overview's throughput, from its own readings
SPANS = web.AppKey("spans", SpanStore)  # only when the console receives traces (CONSOLE_TRACES)
# The signed-in operator's session, set by the guard on every request it lets through.
SESSION = web.RequestKey("session", Session)


def session_of(request: web.Request) -> Session:
    return request[SESSION]
