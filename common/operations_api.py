"""The operations endpoints every service has: liveness, readiness, Prometheus metrics, the OpenAPI
document (routes and answers declared in `common/shared_api.py`). Each reads the service's
`ServiceContext` (readiness its `ReadinessChecks`), which `common.app.create_service` provides to the
app. The public ones cost no I/O: readiness is checked in the background, the document built once."""

from __future__ import annotations

import json

from faust.web import Request, Response

from common import shared_api
from common.api_keys import ApiKeys
from common.auth import PUBLIC, Access
from common.context import ServiceContext
from common.metrics import render_metrics
from common.openapi import Route, build_openapi
from common.readiness import ReadinessChecks, sees_reasons
from common.web import CALLER, Blueprint, JsonView

blueprint = Blueprint("operations")


@blueprint.serve(shared_api.HEALTH)
class Health(JsonView):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok", "service": self.dependency(ServiceContext).service.value})


@blueprint.serve(shared_api.READY)
class Ready(JsonView):
    async def get(self, request: Request) -> Response:
        """The last round of the background checks (common/readiness.py), which starts the next one if
        it is a second old: no I/O here. Why a check fails is told to operators only."""
        checks = await self.dependency(ReadinessChecks).current()
        authentication = "off" if self.dependency(ApiKeys).disabled else "on"
        answer = {
            "ready": checks.ready,
            "checks": checks.shown(with_reasons=sees_reasons(request.get(CALLER))),
            "authentication": authentication,
        }
        return self.json(answer, status=200 if checks.ready else 503)


@blueprint.serve(shared_api.METRICS)
class Metrics(JsonView):
    def access(self, route: Route) -> Access:
        """Operators only, unless SAGA_PUBLIC_METRICS opens it to a scraper without a key."""
        return PUBLIC if self.dependency(ServiceContext).settings.public_metrics else route.access

    async def get(self, request: Request) -> Response:
        body = await render_metrics(self.dependency(ServiceContext))
        return self.bytes(body, content_type="text/plain; version=0.0.4")


@blueprint.serve(shared_api.OPENAPI)
class OpenApi(JsonView):
    # The document never changes while the service runs: built on the first request, then served as is.
    _document: bytes | None = None

    async def get(self, request: Request) -> Response:
        if self._document is None:
            context = self.dependency(ServiceContext)
            title = f"saga {context.service.value} service"
            self._document = json.dumps(
                build_openapi(title, context.description, context.routes, context.callouts)
            ).encode()
        return self.bytes(self._document, headers={"Content-Type": "application/json; charset=utf-8"})
