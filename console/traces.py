"""The console as the services' trace collector (CONSOLE_TRACES): OTLP/HTTP exports in, kept in memory
(common/span_store.py) for the order page to draw. Public like a collector's port: an exporter has no
operator session; what it posts is only ever shown, escaped, to signed-in operators. A post is bounded
by aiohttp's body limit (1 MiB, a 413 above it); an exporter's batch of 512 spans is some 220 KB."""

from __future__ import annotations

from aiohttp import web

from console.keys import SPANS


async def receive(request: web.Request) -> web.Response:
    try:
        request.app[SPANS].receive(await request.read())
    except ValueError as error:
        return web.Response(status=400, text=str(error))
    # An empty ExportTraceServiceResponse: nothing rejected.
    return web.Response(status=200, body=b"", content_type="application/x-protobuf")
