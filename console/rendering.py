"""Pages from templates: Jinja2 with autoescaping on, so nothing a service answers (an error text, a
dead letter's raw message, a shop's order id) can inject markup into the operator's page."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from console.keys import SESSION, TEMPLATES
from console.sessions import CSRF_FIELD, Session

TEMPLATE_DIR = Path(__file__).parent / "templates"


def templates() -> Environment:
    """The console's templates; a missing variable is an error rather than an empty cell."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["path"] = lambda value: quote(str(value), safe=":")
    return environment


def render_text(environment: Environment, name: str, **context: Any) -> str:
    """A template rendered with `context` (no request needed: what the unit tests render)."""
    context.setdefault("csrf", "")
    context.setdefault("csrf_field", CSRF_FIELD)
    context.setdefault("notices", [])
    context.setdefault("signed_in", False)
    return environment.get_template(name).render(**context)


def render(request: web.Request, name: str, http_status: int = 200, **context: Any) -> web.Response:
    """A page or fragment for the signed-in operator: with their CSRF token for its forms and the
    notices of their last actions (shown once)."""
    session: Session | None = request.get(SESSION)
    if session is not None:
        context.setdefault("csrf", session.csrf_token)
        context.setdefault("notices", session.take_notices())
        context.setdefault("signed_in", True)
    context.setdefault("here", request.path_qs)
    body = render_text(request.app[TEMPLATES], name, **context)
    return web.Response(text=body, status=http_status, content_type="text/html")
