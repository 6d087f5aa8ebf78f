"""A span for each request to a service's API, continuing the caller's `traceparent` header: a checkout
sent inside a shop's own trace starts the saga in that trace (common/tracing.py). Installed only when
traces are on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from common.tracing import TRACEPARENT, SpanKind, Tracing

# Probes and scrapes: many a minute, nothing to do with a saga.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def traced_requests(tracing: Tracing) -> Any:
    @web.middleware
    async def trace_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in UNTRACED_PATHS:
            return await handler(request)
        route = _route_of(request)
        with tracing.span(
            f"{request.method} {route}",
            parent=request.headers.get(TRACEPARENT),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": route},
        ) as span:
            try:
                response = await handler(request)
            except web.HTTPException as answer:
                if span is not None:
                    span.set_attribute("http.response.status_code", answer.status)
                raise
            if span is not None:
                span.set_attribute("http.response.status_code", response.status)
            return response

    return trace_request


def _route_of(request: web.Request) -> str:
    """The route's template (`/orders/{order_id}`), so spans of one endpoint share a name; a path no route
    has is `unmatched` (a scanner's paths must not become as many span names)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"
