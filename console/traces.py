"""The console as the services' trace collector (CONSOLE_TRACES): OTLP/HTTP exports in, kept in memory
(common/ops/spans.py) for the order page to draw. Public like a collector's port: an exporter has no
operator session; what it posts is only ever shown, escaped, to signed-in operators."""

from __future__ import annotations

from aiohttp import web

from console.keys import SPANS

# A batch of 512 spans encodes to some 100-200 KB; this bounds a bad or hostile post.
MAX_EXPORT_BYTES = 8 * 1024 * 1024


async def receive(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_EXPORT_BYTES:
        return web.Response(status=413, text="export too large")
    body = await request.read()
    if len(body) > MAX_EXPORT_BYTES:
        return web.Response(status=413, text="export too large")
    try:
        request.app[SPANS].receive(body)
    except ValueError as error:
        return web.Response(status=400, text=str(error))
    # An empty ExportTraceServiceResponse: no partial rejection.
    return web.Response(status=200, body=b"", content_type="application/x-protobuf")
