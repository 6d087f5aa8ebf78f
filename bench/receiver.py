"""`python -m bench.receiver PORT`: the bench's webhook receiver, a shop's endpoint in a process of its own.

It shares the two cores with everything it measures, so a request costs it as little as it can: it
answers 200 at once with an empty body and keeps the receive time (`time.time()`, the wall clock: the
same clock as PostgreSQL's `clock_timestamp()`, which stamps `occurred_at`, on this one machine), the
attempt header and the raw body in memory. No signature check, no JSON, no disk, no log line per
request. The bodies are decoded only when the bench asks for them (`GET /_bench/records`, between steps,
when the load is off): each answer holds what arrived since the previous one, and the receiver forgets
it. It prints `ready` on stdout once it listens.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import datetime
from typing import Any

from aiohttp import web

RECORDS_PATH = "/_bench/records"


class Recorder:
    """What arrived: (receive time, attempt header, body) per request, decoded on demand."""

    def __init__(self) -> None:
        self._arrived: list[tuple[float, str | None, bytes]] = []
        self._seen: set[str] = set()
        self.requests = 0
        self.duplicates = 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "POST":
            body = await request.read()
            # Stamped once the whole request is in: "the receiver got it".
            self._arrived.append((time.time(), request.headers.get("Saga-Delivery-Attempt"), body))
            return web.Response()
        if request.method == "GET" and request.path == RECORDS_PATH:
            return web.json_response(self.take())
        return web.Response(status=404)

    def take(self) -> dict[str, Any]:
        """The requests that arrived since the last call, decoded, and the running totals. A duplicate is
        a request for an event id received before (a retry after a lost answer, or a resend)."""
        arrived, self._arrived = self._arrived, []
        records = []
        for received_at, attempt, body in arrived:
            record = _record(received_at, attempt, body)
            self.requests += 1
            if record["id"] in self._seen:
                self.duplicates += 1
            self._seen.add(record["id"])
            records.append(record)
        return {"records": records, "requests": self.requests, "duplicates": self.duplicates}


def _record(received_at: float, attempt: str | None, body: bytes) -> dict[str, Any]:
    event = json.loads(body)
    return {
        "received_at": received_at,
        "id": event["id"],
        "type": event["type"],
        "sequence": event["sequence"],
        "order_id": event["order"]["order_id"],
        "occurred_at": datetime.fromisoformat(event["occurred_at"]).timestamp(),
        "attempt": int(attempt) if attempt and attempt.isdigit() else 0,
    }


async def serve(port: int) -> None:
    recorder = Recorder()
    # The low-level server: no router, no middleware, no access log between a request and its answer.
    server = web.Server(recorder.handle, access_log=None)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, "127.0.0.1", port, backlog=256)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        listener.close()
        await server.shutdown(1.0)


def main() -> None:
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
