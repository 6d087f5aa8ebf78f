"""`saga_events`: the events on the three topics (`payment`, `order`, `delivery`) during one test.

One recorder per session reads every partition of the three topics (no consumer group: it commits
nothing and disturbs no service) in a thread of its own. A test's view holds what was published after
the test began: at its start it takes the end offset of every partition, and sees only later offsets.

    saga_events.published("OrderCancelled", order_id=order_id)        # the matching events (a list)
    saga_events.wait_for("PaymentRefunded", order_id=order_id)         # blocks until one arrives
    saga_events.of_order(order_id)                                     # the order's events, in order
    saga_events.types(order_id)                                        # ... their types only

Events are published at least once: a service killed after the broker took an event and before it
noted so sends it again once back, so a copy with the same `event_id` can be on a topic twice (every
consumer applies it once). Count events by `event_id` where a crash is part of the test.

Keyword arguments match the envelope (`order_id`, `owner`, `topic`, `producer`, `version`, …) and
otherwise the payload (`reason="customer"`). An event's `order_id` is the one the shop knows (`o-1`),
its `owner` the shop's name; `order_id=` matches either that id or the saga id `owner:o-1`, so two
shops' `o-1` are told apart by `owner=` or by the saga id.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")
TOPICS = ("payment", "order", "delivery")
_ENVELOPE = ("order_id", "owner", "topic", "producer", "version", "event_id", "causation_id")


@dataclass(frozen=True)
class RecordedEvent:
    topic: str
    partition: int
    offset: int
    type: str
    order_id: str | None  # as the shop knows it (the envelope's saga id is `owner:order_id`)
    payload: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None
    causation_id: str | None = None
    producer: str | None = None
    version: int | None = None
    occurred_at: datetime | None = None
    owner: str | None = None  # the shop whose order it is

    @property
    def saga_id(self) -> str | None:
        """The order's platform-wide id, `owner:order_id`."""
        return f"{self.owner}:{self.order_id}" if self.owner and self.order_id else self.order_id

    def matches(self, event_type: str | None, match: Mapping[str, Any]) -> bool:
        if event_type is not None and self.type != event_type:
            return False
        for key, wanted in match.items():
            value = getattr(self, key) if key in _ENVELOPE else self.payload.get(key)
            if key == "order_id" and wanted == self.saga_id:  # named with its owner
                continue
            if value != wanted:
                return False
        return True


def decode(topic: str, partition: int, offset: int, value: bytes | None) -> RecordedEvent:
    """An event from a message; one that is not an envelope is kept as type `<undecodable>`."""
    try:
        envelope = json.loads(value or b"")
        occurred = envelope.get("occurred_at")
        owner, order_id = _owner_and_order_id(envelope.get("order_id"), envelope.get("owner"))
        return RecordedEvent(
            topic=topic,
            partition=partition,
            offset=offset,
            type=str(envelope["type"]),
            order_id=order_id,
            owner=owner,
            payload=dict(envelope.get("payload") or {}),
            event_id=envelope.get("event_id"),
            causation_id=envelope.get("causation_id"),
            producer=envelope.get("producer"),
            version=envelope.get("version"),
            occurred_at=datetime.fromisoformat(occurred.replace("Z", "+00:00")) if occurred else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return RecordedEvent(topic, partition, offset, "<undecodable>", None, {"raw": repr(value)[:500]})


def _owner_and_order_id(saga_id: str | None, owner: str | None) -> tuple[str | None, str | None]:
    """The envelope's saga id (`owner:order_id`) as its owner and the order id the shop knows."""
    if saga_id is None or not owner or not saga_id.startswith(f"{owner}:"):
        return owner, saga_id
    return owner, saga_id[len(owner) + 1 :]


class EventRecorder:
    """Every event published on the topics after `start`, for the whole session."""

    def __init__(self, bootstrap_servers: str, topics: tuple[str, ...] = TOPICS) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.events: list[RecordedEvent] = []
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._stopping = False
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: Any = None
        self._partitions: list[Any] = []
        self._thread = threading.Thread(target=self._run, name="saga-events", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure is not None:
            self.stop()
            raise RuntimeError(
                f"cannot read the topics at {self.bootstrap_servers}: {self._failure or 'no answer'}"
            )

    def stop(self) -> None:
        self._stopping = True
        self._thread.join(10)

    def end_offsets(self) -> dict[tuple[str, int], int]:
        """Where each partition ends now: what is published later has this offset or more."""
        ends: dict[Any, int] = self._call(self._consumer.end_offsets(self._partitions))
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    def wait(self, until: Callable[[], T | None], timeout: float) -> T | None:
        """Block until `until()` (evaluated after every new event) is not None, or the time is up."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := until()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._failure is not None:
                    return None
                self._changed.wait(min(remaining, 0.5))
            return found

    async def _describe(self) -> list[tuple[str, int]]:
        """Every partition of the topics, from the broker (a consumer that subscribed to none knows none)."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            described = await admin.describe_topics(list(self.topics))
        finally:
            await admin.close()
        partitions = {topic["topic"]: [p["partition"] for p in topic["partitions"]] for topic in described}
        missing = [topic for topic in self.topics if not partitions.get(topic)]
        if missing:
            raise RuntimeError(f"the broker has no topic {', '.join(missing)}")
        return sorted((topic, p) for topic in self.topics for p in partitions[topic])

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "the recorder is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as failure:  # reported by start() or by the waits
            self._failure = failure
            self._ready.set()

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self._loop = asyncio.get_running_loop()
        self._partitions = [TopicPartition(topic, p) for topic, p in await self._describe()]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(self._partitions)
            await consumer.seek_to_end(*self._partitions)
            for partition in self._partitions:
                await consumer.position(partition)
            self._consumer = consumer
            self._ready.set()
            while not self._stopping:
                batches = await consumer.getmany(timeout_ms=200)
                recorded = [
                    decode(message.topic, message.partition, message.offset, message.value)
                    for messages in batches.values()
                    for message in messages
                ]
                if recorded:
                    with self._changed:
                        self.events.extend(recorded)
                        self._changed.notify_all()
        finally:
            await consumer.stop()


class SagaEvents:
    """One test's view of the recorder: the events published since the test began."""

    def __init__(self, recorder: EventRecorder) -> None:
        self._recorder = recorder
        self._since = recorder.end_offsets()

    def all(self) -> list[RecordedEvent]:
        return [
            event
            for event in list(self._recorder.events)
            if event.offset >= self._since.get((event.topic, event.partition), 0)
        ]

    def published(self, event_type: str | None = None, /, **match: Any) -> list[RecordedEvent]:
        """The events of that type (any if None) whose envelope or payload fields match."""
        return [event for event in self.all() if event.matches(event_type, match)]

    def wait_for(
        self, event_type: str, /, *, timeout: float = 30.0, count: int = 1, **match: Any
    ) -> RecordedEvent:
        """The `count`-th matching event, once it was published; AssertionError after `timeout`."""

        def found() -> RecordedEvent | None:
            matching = self.published(event_type, **match)
            return matching[count - 1] if len(matching) >= count else None

        event = self._recorder.wait(found, timeout)
        if event is None:
            order_id = match.get("order_id")
            seen = self.types(order_id) if order_id else [e.type for e in self.all()][-20:]
            raise AssertionError(
                f"no {event_type} #{count} matching {match} within {timeout:g}s; seen: {seen}"
            )
        return event

    def of_order(self, order_id: str) -> list[RecordedEvent]:
        """The order's events on all three topics, in the order they happened."""
        events = self.published(order_id=order_id)
        return sorted(
            events, key=lambda event: event.occurred_at.timestamp() if event.occurred_at else float("inf")
        )

    def types(self, order_id: str) -> list[str]:
        return [event.type for event in self.of_order(order_id)]
