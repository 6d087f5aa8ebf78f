"""A small real payment provider over HTTP, for tests: it can be told to succeed, fail or hang.

Run: python -m tests.fakes.provider PORT. Control: POST /_control {"charges": MODE, "refunds": MODE} with
MODE one of ok | refuse (4xx) | error (503) | hang (no answer for a minute). GET /_state shows every
charge and refund it made (once per idempotency key) and how many refund calls it received.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from aiohttp import web

MODES = {"ok", "refuse", "error", "hang"}


def build_app() -> web.Application:
    state: dict[str, Any] = {
        "modes": {"charges": "ok", "refunds": "ok"},
        "charges": {},
        "refunds": {},
        "refund_calls": 0,
    }

    async def misbehave(kind: str) -> web.Response | None:
        mode = state["modes"][kind]
        if mode == "hang":
            await asyncio.sleep(60)
        if mode == "error":
            return web.json_response({"reason": "provider is down"}, status=503)
        if mode == "refuse":
            return web.json_response({"reason": f"{kind} refused by the provider"}, status=422)
        return None

    async def charges(request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        if key in state["charges"]:
            return web.json_response(state["charges"][key])
        if (failure := await misbehave("charges")) is not None:
            return failure
        body = await request.json()
        if body["payment_method"] == "tok_declined":
            return web.json_response({"status": "declined", "reason": "card_declined"}, status=402)
        state["charges"][key] = {"id": f"ch_{uuid.uuid4().hex[:12]}", "status": "succeeded", **body}
        return web.json_response(state["charges"][key])

    async def refunds(request: web.Request) -> web.Response:
        state["refund_calls"] += 1
        key = request.headers["Idempotency-Key"]
        if key in state["refunds"]:
            return web.json_response(state["refunds"][key])
        if (failure := await misbehave("refunds")) is not None:
            return failure
        state["refunds"][key] = {"id": f"re_{uuid.uuid4().hex[:12]}", **(await request.json())}
        return web.json_response(state["refunds"][key])

    async def control(request: web.Request) -> web.Response:
        changes = await request.json()
        if not set(changes) <= {"charges", "refunds"} or not set(changes.values()) <= MODES:
            return web.json_response({"reason": "unknown mode"}, status=400)
        state["modes"].update(changes)
        return web.json_response(state["modes"])

    async def show(request: web.Request) -> web.Response:
        return web.json_response(state)

    app = web.Application()
    app.add_routes(
        [
            web.post("/charges", charges),
            web.post("/refunds", refunds),
            web.post("/_control", control),
            web.get("/_state", show),
        ]
    )
    return app


if __name__ == "__main__":
    web.run_app(build_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None)
