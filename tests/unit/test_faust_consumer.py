"""A service's Kafka consumer runs on the worker's event loop: no consumer thread, no second loop."""

from __future__ import annotations

import asyncio
import threading

from common.faust_consumer import InLoopConsumerThread, InLoopTransport
from common.http_server import HttpLimits, ServiceApp


def _app() -> ServiceApp:
    return ServiceApp(
        "test-in-loop",
        http_limits=HttpLimits(head_seconds=5, keepalive_seconds=5),
        broker="kafka://localhost:9",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
    )


def test_a_service_app_consumes_through_the_in_loop_transport() -> None:
    app = _app()

    assert isinstance(app.transport, InLoopTransport)
    assert isinstance(app.consumer._thread, InLoopConsumerThread)


async def test_what_faust_hands_the_consumer_thread_runs_on_the_callers_loop_and_thread() -> None:
    app = _app()
    consumer_service = app.consumer._thread
    ran_on: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []

    async def work(value: int) -> int:
        ran_on.append((asyncio.get_running_loop(), threading.current_thread()))
        return value * 2

    assert await consumer_service.call_thread(work, 21) == 42
    assert ran_on == [(asyncio.get_running_loop(), threading.current_thread())]
    assert consumer_service.thread_loop is app.loop
