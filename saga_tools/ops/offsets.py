"""Replay planning: where a consumer group's offsets move to, per partition. Pure; the broker is an edge.

Business rule: a replay only ever moves a group *back*. Moving forward would skip events the service has
not processed yet, and a skipped event is a saga lost; so a target past the group's position is refused.
Targets are clamped to what the log still holds (retention may have deleted the oldest events).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PartitionState:
    """One partition as the group sees it. `committed` is None when the group never committed there."""

    topic: str
    partition: int
    committed: int | None
    beginning: int
    end: int

    @property
    def position(self) -> int:
        """Where the group resumes: its commit, or the log's beginning (our services reset to earliest)."""
        return self.committed if self.committed is not None else self.beginning


@dataclass(frozen=True)
class ToBeginning:
    pass


@dataclass(frozen=True)
class ToOffset:
    partition: int
    offset: int


@dataclass(frozen=True)
class Shift:
    by: int  # negative: that many events back


@dataclass(frozen=True)
class ToOffsets:
    """Per-partition offsets found by the broker, e.g. for a time (None: no event at or after it)."""

    offsets: dict[int, int | None]


ReplayTarget = ToBeginning | ToOffset | Shift | ToOffsets


class ReplayRefused(ValueError):
    """The requested replay would skip events or names a partition that does not exist."""


@dataclass(frozen=True)
class PartitionMove:
    topic: str
    partition: int
    current: int
    target: int

    @property
    def replayed(self) -> int:
        """How many events the group will see again."""
        return self.current - self.target


def parse_partition_offset(text: str) -> ToOffset:
    """`P:O` → ToOffset(P, O)."""
    partition, sep, offset = text.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise ValueError(f"--to-offset takes PARTITION:OFFSET, e.g. 0:42 (got {text!r})")
    return ToOffset(int(partition), int(offset))


def plan_replay(partitions: list[PartitionState], target: ReplayTarget) -> list[PartitionMove]:
    """The move of every partition for `target`; partitions a target does not name stay where they are."""
    if isinstance(target, ToOffset) and target.partition not in {p.partition for p in partitions}:
        known = ", ".join(str(p.partition) for p in partitions)
        raise ReplayRefused(f"partition {target.partition} does not exist (partitions: {known})")
    moves = []
    for state in partitions:
        wanted = _wanted(state, target)
        clamped = min(max(wanted, state.beginning), state.end)
        if clamped > state.position:
            raise ReplayRefused(
                f"{state.topic}[{state.partition}]: offset {clamped} is past the group's position "
                f"{state.position}; moving forward would skip {clamped - state.position} unprocessed events"
            )
        moves.append(PartitionMove(state.topic, state.partition, state.position, clamped))
    return moves


def _wanted(state: PartitionState, target: ReplayTarget) -> int:
    if isinstance(target, ToBeginning):
        return state.beginning
    if isinstance(target, Shift):
        return state.position + target.by
    if isinstance(target, ToOffset):
        return target.offset if target.partition == state.partition else state.position
    found = target.offsets.get(state.partition)
    # No event at or after the time on this partition: nothing there to see again.
    return state.position if found is None else min(found, state.position)
