"""The operations endpoints every service has: liveness, readiness, Prometheus metrics, the OpenAPI
document (routes and answers declared in `common/shared_api.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import faust
from sqlalchemy import select

from common import shared_api
from common.context import ServiceContext
from common.db import reading
from common.kafka import replication_readiness
from common.metrics import render_metrics
from common.openapi import build_openapi
from common.web import JsonView, serve


def attach_operations_api(app: faust.App, context: ServiceContext, description: str) -> None:
    documented = context.routes

    @serve(app, documented, shared_api.HEALTH)
    class Health(JsonView):
        async def get(self, request: Any) -> Any:
            return self.json({"status": "ok", "service": context.service.value})

    @serve(app, documented, shared_api.READY)
    class Ready(JsonView):
        async def get(self, request: Any) -> Any:
            checks = {
                "database": await _check(_ping_database(context)),
                "broker": await _check(_ping_broker(context)),
                "replication": await replication_readiness(context.settings),
            }
            ready = all(value == "ok" for value in checks.values())
            return self.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    @serve(app, documented, shared_api.METRICS)
    class Metrics(JsonView):
        async def get(self, request: Any) -> Any:
            body = await render_metrics(context)
            return self.bytes(body, content_type="text/plain; version=0.0.4")

    @serve(app, documented, shared_api.OPENAPI)
    class OpenApi(JsonView):
        async def get(self, request: Any) -> Any:
            return self.json(
                build_openapi(f"saga {context.service.value} service", description, context.routes)
            )


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
