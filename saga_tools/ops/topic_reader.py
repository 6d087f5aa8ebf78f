"""`saga tail`: a topic's events decoded, one line each (the readable version of the console consumer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from common.events.codec import EventDecodeError, decode_event
from common.kafka_security import KafkaTarget, as_connection
from saga_tools.ops.groups import topic_partitions


@dataclass(frozen=True)
class TailedRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def describe_record(record: TailedRecord) -> str:
    """One line: when, where, which event, which order, and the payload fields an operator looks for."""
    when = datetime.fromtimestamp(record.timestamp_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    try:
        event = decode_event(record.value, topic=record.topic)
    except EventDecodeError as exc:
        key = record.key.decode("utf-8", errors="replace") if record.key is not None else "-"
        return f"{when} {where} UNDECODABLE order={key} error={exc}"
    envelope = event.envelope
    details = " ".join(_payload_summary(envelope.payload))
    line = f"{when} {where} {envelope.type} v{envelope.version} order={envelope.order_id}"
    return f"{line} {details}".rstrip()


def _payload_summary(payload: dict[str, Any]) -> list[str]:
    parts = []
    amount = payload.get("amount")
    if isinstance(amount, dict):
        parts.append(f"amount={amount.get('amount_minor')} {amount.get('currency')}")
    for name in ("reason", "attempts", "tracking_code"):
        if payload.get(name) is not None:
            parts.append(f"{name}={payload[name]}")
    if isinstance(payload.get("short"), list):
        skus = ",".join(str(item.get("sku")) for item in payload["short"] if isinstance(item, dict))
        parts.append(f"short={skus}")
    return parts


@dataclass(frozen=True)
class TailStart:
    """Where reading starts: the beginning, a time (ms since the epoch), or the end (only new events)."""

    from_beginning: bool = False
    since_ms: int | None = None


async def read_topic(
    kafka: KafkaTarget,
    topic: str,
    start: TailStart,
    *,
    follow: bool,
    order_id: str | None = None,
) -> AsyncIterator[TailedRecord]:
    """Records of `topic` from `start`; without `follow` it stops at the end the topic had when called."""
    partitions = await topic_partitions(kafka, [topic])
    consumer = AIOKafkaConsumer(
        **as_connection(kafka).aiokafka_options(), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await _seek(consumer, partitions, start, ends)
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        key = order_id.encode() if order_id is not None else None
        while follow or remaining:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batches.items():
                for message in records:
                    if message.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
                    if not follow and message.offset >= ends[tp]:
                        continue
                    if key is not None and message.key != key:
                        continue
                    yield TailedRecord(
                        message.topic,
                        message.partition,
                        message.offset,
                        message.timestamp,
                        message.key,
                        message.value,
                    )
            if not batches:
                # Nothing buffered: a partition whose fetch position reached the end has no record left
                # (its last offsets may be gaps, e.g. transaction markers, so no record would say so).
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()


async def _seek(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    start: TailStart,
    ends: dict[TopicPartition, int],
) -> None:
    # Explicit offsets, not seek_to_beginning(): that reset can lose a race with the one assign() starts.
    if start.from_beginning:
        for tp, offset in (await consumer.beginning_offsets(list(partitions))).items():
            consumer.seek(tp, offset)
        return
    if start.since_ms is None:
        for tp in partitions:
            consumer.seek(tp, ends[tp])
        return
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, start.since_ms))
    for tp in partitions:
        hit = found.get(tp)
        consumer.seek(tp, hit.offset if hit is not None else ends[tp])
