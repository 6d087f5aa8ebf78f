"""Replay planning: where each partition's offset moves, and which moves are refused."""

from __future__ import annotations

import pytest

from saga_tools.ops.offsets import (
    PartitionMove,
    PartitionState,
    ReplayRefused,
    Shift,
    ToBeginning,
    ToOffset,
    ToOffsets,
    parse_partition_offset,
    plan_replay,
)


def state(partition: int, committed: int | None, beginning: int = 0, end: int = 100) -> PartitionState:
    return PartitionState("order", partition, committed, beginning, end)


@pytest.mark.parametrize(
    ("partitions", "target", "expected_targets"),
    [
        # to the beginning: the first offset the log still holds, not 0
        ([state(0, 80), state(1, 100, beginning=30)], ToBeginning(), [0, 30]),
        # a shift moves every partition back by N, never before the beginning
        ([state(0, 80), state(1, 5)], Shift(-10), [70, 0]),
        ([state(0, 80, beginning=75)], Shift(-10), [75]),
        # an offset names one partition; the others stay where they are
        ([state(0, 80), state(1, 60)], ToOffset(1, 10), [80, 10]),
        # offsets for a time: a partition without an event since then stays; never forward
        ([state(0, 80), state(1, 60), state(2, 40)], ToOffsets({0: 50, 1: None, 2: 90}), [50, 60, 40]),
        # a group that never committed resumes at the beginning, so that is where it is now
        ([state(0, None, beginning=20)], ToBeginning(), [20]),
    ],
)
def test_replay_targets_move_back_and_stay_inside_the_log(
    partitions: list[PartitionState], target: object, expected_targets: list[int]
) -> None:
    moves = plan_replay(partitions, target)  # type: ignore[arg-type]
    assert [move.target for move in moves] == expected_targets
    assert all(move.replayed >= 0 for move in moves)


def test_the_events_seen_again_are_those_between_target_and_position() -> None:
    [move] = plan_replay([state(0, 80)], ToOffset(0, 30))
    assert move == PartitionMove("order", 0, current=80, target=30)
    assert move.replayed == 50


@pytest.mark.parametrize(
    ("partitions", "target", "message"),
    [
        ([state(0, 10)], ToOffset(0, 50), "would skip 40 unprocessed events"),
        ([state(0, 10)], Shift(5), "would skip 5"),
        ([state(0, 10)], ToOffset(3, 0), "partition 3 does not exist"),
    ],
)
def test_a_replay_that_would_skip_events_or_names_no_partition_is_refused(
    partitions: list[PartitionState], target: object, message: str
) -> None:
    with pytest.raises(ReplayRefused, match=message):
        plan_replay(partitions, target)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [("0:42", ToOffset(0, 42)), ("12:0", ToOffset(12, 0))])
def test_partition_offset_is_parsed(text: str, expected: ToOffset) -> None:
    assert parse_partition_offset(text) == expected


@pytest.mark.parametrize("text", ["42", "a:1", "1:", ":3", "1:-2", "1:2:3"])
def test_a_malformed_partition_offset_says_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="PARTITION:OFFSET"):
        parse_partition_offset(text)
