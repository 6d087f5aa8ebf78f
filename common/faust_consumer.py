"""Faust's Kafka consumer run on the worker's own event loop instead of a thread of its own.

Faust (faust-streaming) runs aiokafka's consumer in a dedicated thread with a second event loop, and
every fetch, commit and seek crosses between the two loops through method queues and thread-safe
wake-ups. Here the consumer is I/O-bound like everything else the worker does, so the thread buys no
parallelism (the GIL), and each message pays for the crossing: the consumer thread wakes for the fetch
response, then wakes the worker's loop (a self-pipe write and a second wake-up), and the two loops each
sleep and wake on their own. On this machine those wake-ups were a quarter of each service's CPU.

`InLoopConsumerThread` keeps Faust's consumer "thread" class and everything it does (the same aiokafka
consumer, rebalance listener, commits and fetches), but starts it as a plain service on the worker's loop,
and runs what Faust would hand to the thread (`call_thread`) directly. Faust's callers still go through
their thread-safe paths (futures resolved with `call_soon_threadsafe`), which work on one loop too.

An idle service should cost next to nothing, so two timers that only made sense elsewhere go:
- the thread's keep-alive, which woke the thread's own loop every second so it would see queued calls
  (there is no second loop here);
- aiokafka's fetch routine re-planning its fetches every 200 ms with nothing to do
  (`FETCH_REPLAN_SECONDS`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service
from mode.utils.futures import maybe_async

# How often aiokafka's background fetch routine looks again at its partitions when nothing woke it.
# Everything that changes what it should fetch wakes it already: a fetch answered, records consumed, a
# seek or offset reset, the assignment revoked, the metadata update it asked for. So this timer is a
# safety net, and at aiokafka's 200 ms it was a quarter of the timers an idle service scheduled (5 of
# about 20 a second, and each one plans, waits on and unwinds every pending fetch). 1.5 s is as long as a
# fetch the broker holds (Faust's `fetch_max_wait_ms`): the net is no slower than a fetch coming back.
FETCH_REPLAN_SECONDS = 1.5


class InLoopConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer service, on the caller's event loop (no thread, no second loop)."""

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        # The "thread's" loop is the worker's own (the loop Faust hands its consumer).
        super().__init__(consumer, thread_loop=kwargs["loop"], **kwargs)

    async def start(self) -> None:
        self._thread_started.set()
        await self._default_start()
        await self.on_thread_started()

    async def stop(self) -> None:
        """What Faust's thread would do when stopped (its `_shutdown_thread`), awaited here."""
        if self._started.is_set() and not self._stopped.is_set():
            self._stopped.set()
            await self.on_stop()
            await self._shutdown_thread()
            await self.on_shutdown()

    @Service.task
    async def _thread_keepalive(self) -> None:
        """Faust's thread wakes its own loop every second so it sees calls queued for it; on the worker's
        loop there is no other loop to keep awake, and every wake-up costs an idle service CPU."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        set_fetch_replan(consumer, FETCH_REPLAN_SECONDS)
        return consumer

    async def call_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))

    async def cast_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        await maybe_async(fun(*args, **kwargs))


def set_fetch_replan(consumer: aiokafka.AIOKafkaConsumer, seconds: float) -> None:
    """Set how often the consumer's fetch routine re-plans unprompted (aiokafka's `consumer_timeout_ms`,
    which Faust does not pass on). Its attribute is private, so a version without it fails here, at the
    consumer's creation, rather than silently keeping 200 ms."""
    if not hasattr(consumer, "_consumer_timeout"):
        raise RuntimeError("this aiokafka has no _consumer_timeout: FETCH_REPLAN_SECONDS cannot be applied")
    consumer._consumer_timeout = seconds


class InLoopConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with its consumer service on the worker's loop."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return InLoopConsumerThread(self, loop=self.loop, beacon=self.beacon)


class InLoopTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose consumers run on the worker's loop."""

    Consumer = InLoopConsumer
