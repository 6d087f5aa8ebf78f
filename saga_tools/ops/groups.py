"""A consumer group's view of its topics, read and moved through the broker (the Kafka edge of replays).

Committing offsets for a group uses a consumer that joins no group (manual assignment): the broker
accepts such a commit only while the group has no members, which is exactly when a replay is safe.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from common.kafka_security import KafkaTarget, as_connection
from saga_tools.ops.offsets import PartitionMove, PartitionState


async def topic_partitions(kafka: KafkaTarget, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from the broker (a consumer that has not subscribed knows none)."""
    admin = AIOKafkaAdminClient(**as_connection(kafka).aiokafka_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    return sorted(partitions)


async def group_members(kafka: KafkaTarget, group: str) -> int:
    """How many consumers are in the group right now (0: nobody is running)."""
    admin = AIOKafkaAdminClient(**as_connection(kafka).aiokafka_options())
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members = 0
    for response in responses:
        for described in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            members += len(described[5])
    return members


async def partition_states(kafka: KafkaTarget, group: str, topics: Sequence[str]) -> list[PartitionState]:
    """Committed, first and next offsets of every partition of `topics` for `group`."""
    partitions = await topic_partitions(kafka, topics)
    admin = AIOKafkaAdminClient(**as_connection(kafka).aiokafka_options())
    consumer = AIOKafkaConsumer(**as_connection(kafka).aiokafka_options(), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    states = []
    for tp in partitions:
        commit = committed.get(tp)
        states.append(
            PartitionState(
                topic=tp.topic,
                partition=tp.partition,
                committed=commit.offset if commit is not None and commit.offset >= 0 else None,
                beginning=beginnings[tp],
                end=ends[tp],
            )
        )
    return states


async def offsets_for_time(kafka: KafkaTarget, topic: str, timestamp_ms: int) -> dict[int, int | None]:
    """Per partition of `topic`, the first offset whose timestamp is at or after `timestamp_ms`."""
    partitions = await topic_partitions(kafka, [topic])
    consumer = AIOKafkaConsumer(**as_connection(kafka).aiokafka_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, timestamp_ms))
    finally:
        await consumer.stop()
    return {tp.partition: (hit.offset if hit is not None else None) for tp, hit in found.items()}


async def commit_moves(kafka: KafkaTarget, group: str, moves: Sequence[PartitionMove]) -> None:
    """Commit each move's target as the group's offset (the group must be empty)."""
    consumer = AIOKafkaConsumer(
        **as_connection(kafka).aiokafka_options(), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        offsets = {TopicPartition(m.topic, m.partition): OffsetAndMetadata(m.target, "") for m in moves}
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def group_lag(kafka: KafkaTarget, group: str, topics: Sequence[str]) -> int:
    """Events in `topics` the group has not committed yet."""
    states = await partition_states(kafka, group, topics)
    return sum(state.end - state.position for state in states)
