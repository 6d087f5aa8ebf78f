"""The operations endpoints every service has: liveness, readiness, Prometheus metrics, the OpenAPI
document (routes and answers declared in `common/shared_api.py`). Each reads the service's
`ServiceContext`, which `common.app.create_service` provides to the app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from faust.web import Request, Response
from sqlalchemy import select

from common import shared_api
from common.api_keys import ApiKeys
from common.auth import PUBLIC, Access
from common.context import ServiceContext
from common.db import reading
from common.kafka import replication_readiness
from common.metrics import render_metrics
from common.openapi import Route, build_openapi
from common.web import Blueprint, JsonView

blueprint = Blueprint("operations")


@blueprint.serve(shared_api.HEALTH)
class Health(JsonView):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok", "service": self.dependency(ServiceContext).service.value})


@blueprint.serve(shared_api.READY)
class Ready(JsonView):
    async def get(self, request: Request) -> Response:
        checks = await readiness(self.dependency(ServiceContext))
        ready = all(value == "ok" for value in checks.values())
        authentication = "off" if self.dependency(ApiKeys).disabled else "on"
        return self.json(
            {"ready": ready, "checks": checks, "authentication": authentication}, status=200 if ready else 503
        )


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
    async def get(self, request: Request) -> Response:
        context = self.dependency(ServiceContext)
        return self.json(
            build_openapi(f"saga {context.service.value} service", context.description, context.routes)
        )


async def readiness(context: ServiceContext) -> dict[str, str]:
    """Each check of readiness: `ok`, or what is wrong."""
    return {
        "database": await _check(_ping_database(context)),
        "broker": await _check(_ping_broker(context)),
        "replication": await replication_readiness(context.settings),
    }


async def _check(probe: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(probe, 3.0)
    except Exception as exc:
        return f"failed: {exc!r}"
    return "ok"


async def _ping_database(context: ServiceContext) -> None:
    async with reading(context.engine) as conn:
        await conn.scalar(select(1))


async def _ping_broker(context: ServiceContext) -> None:
    producer = await context.producer.get()
    await producer.client.fetch_all_metadata()
