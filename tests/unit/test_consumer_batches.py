"""How the consumer groups queued events into batches and when it acknowledges them (a fake stream)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from common.messaging.batches import consume_in_batches


class FakeStream:
    """Yields events as the test releases them, and records acks."""

    def __init__(self) -> None:
        self.enable_acks = True
        self.incoming: asyncio.Queue[object] = asyncio.Queue()
        self.acked: list[object] = []

    async def events(self) -> AsyncIterator[object]:
        while True:
            event = await self.incoming.get()
            if isinstance(event, Exception):
                raise event
            if event is None:
                return
            yield event

    async def ack(self, event: object) -> bool:
        self.acked.append(event)
        return True


async def test_events_that_queued_up_while_busy_form_the_next_batch_and_an_idle_event_goes_alone() -> None:
    stream = FakeStream()
    batches: list[list[object]] = []
    first_batch_started = asyncio.Event()
    release_first_batch = asyncio.Event()

    async def apply(batch: Sequence[object]) -> None:
        batches.append(list(batch))
        if len(batches) == 1:
            first_batch_started.set()
            await release_first_batch.wait()

    consumer = asyncio.ensure_future(consume_in_batches(stream, apply, max_batch=3))
    stream.incoming.put_nowait("e1")
    await first_batch_started.wait()
    for event in ("e2", "e3", "e4", "e5"):
        stream.incoming.put_nowait(event)
    await asyncio.sleep(0.01)
    release_first_batch.set()
    await asyncio.sleep(0.01)
    stream.incoming.put_nowait(None)
    await asyncio.wait_for(consumer, 1)

    assert batches == [["e1"], ["e2", "e3", "e4"], ["e5"]]
    assert stream.acked == ["e1", "e2", "e3", "e4", "e5"]
    assert stream.enable_acks is False


async def test_no_event_is_acked_before_its_batch_was_applied() -> None:
    stream = FakeStream()
    calls: list[tuple[list[object], list[object]]] = []  # (batch, what was acked when it was applied)

    async def apply(batch: Sequence[object]) -> None:
        calls.append((list(batch), list(stream.acked)))
        await asyncio.sleep(0)

    consumer = asyncio.ensure_future(consume_in_batches(stream, apply, max_batch=1))
    for event in ("e1", "e2", "e3", None):
        stream.incoming.put_nowait(event)
    await asyncio.wait_for(consumer, 1)

    assert calls == [(["e1"], []), (["e2"], ["e1"]), (["e3"], ["e1", "e2"])]
    assert stream.acked == ["e1", "e2", "e3"]


async def test_a_failing_batch_stops_the_consumer_without_acking_it() -> None:
    stream = FakeStream()

    async def apply(batch: Sequence[object]) -> None:
        raise RuntimeError("cannot apply")

    stream.incoming.put_nowait("e1")
    with pytest.raises(RuntimeError, match="cannot apply"):
        await asyncio.wait_for(consume_in_batches(stream, apply, max_batch=10), 1)
    assert stream.acked == []


async def test_an_error_reading_the_stream_reaches_the_consumer() -> None:
    stream = FakeStream()

    async def apply(batch: Sequence[object]) -> None:
        return None

    stream.incoming.put_nowait(ConnectionError("fetch failed"))
    with pytest.raises(ConnectionError, match="fetch failed"):
        await asyncio.wait_for(consume_in_batches(stream, apply, max_batch=10), 1)


async def test_events_still_queued_when_the_consumer_is_cancelled_are_never_acked() -> None:
    stream = FakeStream()
    applying = asyncio.Event()

    async def apply(batch: Sequence[object]) -> None:
        applying.set()
        await asyncio.sleep(3600)

    consumer = asyncio.ensure_future(consume_in_batches(stream, apply, max_batch=10))
    stream.incoming.put_nowait("e1")
    await applying.wait()
    stream.incoming.put_nowait("e2")
    await asyncio.sleep(0.01)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert stream.acked == []


async def test_events_that_reach_the_queue_a_few_loop_turns_apart_are_applied_in_one_batch() -> None:
    # As delivery's Shipped and Delivered do: one fetch, but Faust's stream hands them over turns apart.
    stream = FakeStream()
    batches: list[list[object]] = []

    async def apply(batch: Sequence[object]) -> None:
        batches.append(list(batch))

    consumer = asyncio.ensure_future(consume_in_batches(stream, apply, max_batch=10))
    stream.incoming.put_nowait("shipped")
    for _ in range(3):
        await asyncio.sleep(0)
    stream.incoming.put_nowait("delivered")
    await asyncio.sleep(0.01)
    stream.incoming.put_nowait(None)
    await asyncio.wait_for(consumer, 1)

    assert batches == [["shipped", "delivered"]]
