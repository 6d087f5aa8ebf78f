"""A service's Kafka consumer runs on the worker's event loop: no consumer thread, no second loop."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import aiokafka
import pytest
from faust.types import TP

from common.faust_consumer import (
    FETCH_REPLAN_SECONDS,
    InLoopConsumerThread,
    InLoopTransport,
    set_fetch_replan,
)
from common.faust_monitor import QuietMonitor
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


async def test_the_consumer_re_plans_its_fetches_unprompted_every_1_5_s_not_aiokafkas_200_ms() -> None:
    app = _app()
    stock = aiokafka.AIOKafkaConsumer(bootstrap_servers="localhost:9")
    ours = app.consumer._thread._create_worker_consumer(app.transport)
    try:
        assert stock._consumer_timeout == 0.2  # aiokafka's consumer_timeout_ms, the attribute we set
        assert ours._consumer_timeout == FETCH_REPLAN_SECONDS == 1.5
    finally:
        await stock.stop()
        await ours.stop()


def test_an_aiokafka_without_the_re_plan_attribute_is_refused_at_the_consumers_creation() -> None:
    with pytest.raises(RuntimeError, match="FETCH_REPLAN_SECONDS"):
        set_fetch_replan(SimpleNamespace(), 1.5)  # type: ignore[arg-type]


async def test_the_in_loop_consumer_runs_no_keepalive_timer_for_a_loop_of_its_own() -> None:
    app = _app()
    consumer_service = app.consumer._thread

    # Faust's thread loops forever, waking every second; ours returns at once.
    await asyncio.wait_for(type(consumer_service)._thread_keepalive.fun(consumer_service), timeout=0.5)


async def test_a_service_apps_monitor_counts_events_without_a_sampling_timer() -> None:
    app = _app()

    assert isinstance(app.monitor, QuietMonitor)
    # Faust's sampler loops forever, waking every second; ours returns at once.
    await asyncio.wait_for(type(app.monitor)._sampler.fun(app.monitor), timeout=0.5)
    # The counts Faust's sensors keep are still kept (only the per-second rates are gone).
    app.monitor.on_message_in(TP("order", 0), 7, SimpleNamespace())
    assert app.monitor.messages_received_total == 1
