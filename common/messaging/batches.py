"""Feeding a consumer's events to the runner in batches, acknowledging each only after it is committed.

The batch is simply what has arrived while the previous batch was being applied (up to a maximum): an
idle service applies each event the moment it comes, with no waiting window, and a busy one pays the
per-transaction costs once per batch. Faust's own `take()` waits for its `within` window on every
call, and acks on its own schedule; here acks are ours.

The rule that makes this safe: the stream's automatic acks are switched off, so Faust commits an
offset only after `stream.ack()` was called for it, which happens after the batch's transaction
committed. Events still queued when the worker stops are never acked, so Kafka redelivers them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import Any, Protocol


class AckingStream(Protocol):
    """The part of a Faust stream this module uses."""

    enable_acks: bool

    def events(self) -> AsyncIterable[Any]: ...

    async def ack(self, event: Any) -> bool: ...


async def consume_in_batches(
    stream: AckingStream,
    apply: Callable[[Sequence[Any]], Awaitable[object]],
    *,
    max_batch: int,
) -> None:
    """Read `stream` into a bounded queue and call `apply` with every batch, in arrival order.

    Returns when the stream ends; an error of the reader is raised here. Events are acked in order
    after `apply` returned for their batch, never before.
    """
    stream.enable_acks = False
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_batch)

    async def read() -> None:
        async for event in stream.events():
            await queue.put(event)

    reader = asyncio.ensure_future(read())
    try:
        while True:
            first = await _next_event(queue, reader)
            if first is _STREAM_ENDED:
                return
            batch = await _with_arrived(first, queue, max_batch)
            await apply(batch)
            for event in batch:
                await stream.ack(event)
    finally:
        reader.cancel()
        # Let the stream's own cleanup run now rather than in a task nobody awaits; bounded, since we may
        # be stopping because the stream is stuck.
        await asyncio.wait({reader}, timeout=_READER_STOP_SECONDS)


_STREAM_ENDED = object()
_READER_STOP_SECONDS = 5.0
_SETTLE_TURNS = 3


async def _with_arrived(first: Any, queue: asyncio.Queue[Any], max_batch: int) -> list[Any]:
    """`first` and what is queued behind it, after letting the loop turn a few times.

    Events that came in one fetch (delivery's Shipped and Delivered, written by one transaction and
    published together) reach this queue a few loop turns apart, through Faust's stream; taken at once,
    they are one transaction instead of two, the second no longer waiting for the first's. A few turns
    of an idle loop cost microseconds, no timer.
    """
    batch = [first]
    turns = 0
    while len(batch) < max_batch:
        if not queue.empty():
            batch.append(queue.get_nowait())
        elif turns < _SETTLE_TURNS:
            turns += 1
            await asyncio.sleep(0)
        else:
            break
    return batch


async def _next_event(queue: asyncio.Queue[Any], reader: asyncio.Future[None]) -> Any:
    """The next queued event, waiting for one; `_STREAM_ENDED` once the reader finished and the queue
    is empty (re-raising the reader's error, if it failed)."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        got_one = getter.done()
        if not got_one:
            getter.cancel()
    if got_one:
        return getter.result()
    reader.result()
    return _STREAM_ENDED
