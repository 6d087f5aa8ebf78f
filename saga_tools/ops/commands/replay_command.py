"""`saga replay`: rewind a stopped service's consumer group on one of its topics, then follow its lag."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from aiokafka.errors import CommitFailedError, KafkaError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.config import Service
from common.kafka_security import KafkaConnection
from common.services import SERVICES
from saga_tools.ops.command_kit import Exit, console, err, fail, operator_settings, require_kafka
from saga_tools.ops.commands.clients import run_kafka
from saga_tools.ops.durations import parse_duration
from saga_tools.ops.groups import commit_moves, group_lag, group_members, offsets_for_time, partition_states
from saga_tools.ops.offsets import (
    PartitionMove,
    ReplayRefused,
    ReplayTarget,
    Shift,
    ToBeginning,
    ToOffsets,
    parse_partition_offset,
    plan_replay,
)


def replay(
    service: Annotated[Service, typer.Argument(help="whose consumer group to rewind")],
    topic: Annotated[Service, typer.Option(help="which of the service's input topics")],
    to_beginning: Annotated[bool, typer.Option("--to-beginning")] = False,
    to_time: Annotated[
        str | None, typer.Option(help="an ISO time (e.g. 2026-11-27T10:00:00Z) or a duration ago (e.g. 1h)")
    ] = None,
    to_offset: Annotated[str | None, typer.Option(help="PARTITION:OFFSET")] = None,
    shift: Annotated[
        int | None, typer.Option(help="move back N events on every partition, e.g. -100")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan, change nothing")] = False,
    wait_for_stop: Annotated[
        float, typer.Option(help="seconds to wait for the service's workers to stop (0: refuse at once)")
    ] = 0.0,
    follow: Annotated[bool, typer.Option(help="after the rewind, follow the lag down to zero")] = True,
    timeout: Annotated[float, typer.Option(help="give up following the lag after this many seconds")] = 600.0,
) -> None:
    """Rewind a service's consumer group so it processes a topic again from an earlier point.

    The inbox makes the replay harmless: events seen before are recognised and change nothing (no second
    charge, refund, reservation or emitted event). Only an idle group can be moved: stop the service's
    workers first. Moving forward (skipping events) is refused.
    """
    _check_replay_options(service, topic, [to_beginning, to_time, to_offset, shift is not None], shift)
    kafka = require_kafka(operator_settings())
    group = SERVICES[service].group_id
    members = _members_allowing_replay(kafka, service, wait_for_stop, dry_run)
    target = _replay_target(kafka, topic.value, to_beginning, to_time, to_offset, shift)
    states = run_kafka(kafka, partition_states(kafka, group, [topic.value]))
    try:
        moves = plan_replay(states, target)
    except ReplayRefused as exc:
        raise fail(str(exc), Exit.USAGE) from exc
    _print_plan(group, moves, {s.partition: s.end for s in states}, dry_run)
    if dry_run:
        if members:
            err.print(f"[yellow]note:[/yellow] {members} worker(s) of {service.value} are running now")
        return
    try:
        run_kafka(kafka, commit_moves(kafka, group, moves))
    except (CommitFailedError, KafkaError) as exc:
        raise fail(
            f"the broker refused the new offsets ({exc.__class__.__name__}): a {service.value} worker "
            "probably started meanwhile; stop it and run the replay again",
            Exit.CONFLICT,
        ) from exc
    console.print(f"rewound {group} on {topic.value}: {sum(m.replayed for m in moves)} event(s) to see again")
    if follow:
        _follow_lag(kafka, service, group, timeout)


def _check_replay_options(service: Service, topic: Service, chosen: list[object], shift: int | None) -> None:
    """A replay names one of the service's input topics and exactly one target, and only moves back."""
    if topic.value not in SERVICES[service].consumed_topics:
        reads = ", ".join(SERVICES[service].consumed_topics)
        raise fail(f"{service.value} does not read {topic.value} (it reads: {reads})", Exit.USAGE)
    if sum(1 for option in chosen if option) != 1:
        raise fail("give exactly one of --to-beginning, --to-time, --to-offset, --shift", Exit.USAGE)
    if shift is not None and shift > 0:
        raise fail("--shift must be negative: a replay moves back", Exit.USAGE)


def _members_allowing_replay(
    kafka: KafkaConnection, service: Service, wait_for_stop: float, dry_run: bool
) -> int:
    """The group's live members (after waiting up to `wait_for_stop` for them to leave); a real replay
    of a group with members is refused: the broker would reject the commit anyway."""
    group = SERVICES[service].group_id
    members = run_kafka(kafka, _wait_until_empty(kafka, group, wait_for_stop))
    if members and not dry_run:
        raise fail(
            f"the {service.value} workers are running ({members} member(s) in group {group}); stop them "
            f"first, or pass --wait-for-stop SECONDS to wait for them to stop",
            Exit.CONFLICT,
        )
    return members


async def _wait_until_empty(kafka: KafkaConnection, group: str, wait: float) -> int:
    deadline = time.monotonic() + wait
    while True:
        members = await group_members(kafka, group)
        if not members or time.monotonic() >= deadline:
            return members
        await asyncio.sleep(1.0)


def _replay_target(
    kafka: KafkaConnection,
    topic: str,
    to_beginning: bool,
    to_time: str | None,
    to_offset: str | None,
    shift: int | None,
) -> ReplayTarget:
    try:
        if to_beginning:
            return ToBeginning()
        if shift is not None:
            return Shift(shift)
        if to_offset is not None:
            return parse_partition_offset(to_offset)
        assert to_time is not None
        at = _parse_time(to_time)
    except ValueError as exc:
        raise fail(str(exc), Exit.USAGE) from exc
    return ToOffsets(run_kafka(kafka, offsets_for_time(kafka, topic, int(at.timestamp() * 1000))))


def _parse_time(text: str) -> datetime:
    """An ISO 8601 time (UTC if no zone is given) or a duration ago."""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return datetime.now(UTC) - parse_duration(text)
        except ValueError:
            raise ValueError(f"--to-time takes an ISO time or a duration ago (got {text!r})") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _print_plan(group: str, moves: list[PartitionMove], ends: dict[int, int], dry_run: bool) -> None:
    title = f"{'dry run: ' if dry_run else ''}replay plan for {group}"
    table = Table("topic", "partition", "current", "target", "end", "seen again", title=title)
    for move in moves:
        table.add_row(
            move.topic,
            str(move.partition),
            str(move.current),
            str(move.target),
            str(ends[move.partition]),
            str(move.replayed),
        )
    console.print(table)
    console.print(f"{sum(move.replayed for move in moves)} event(s) will be seen again")


def _follow_lag(kafka: KafkaConnection, service: Service, group: str, timeout: float) -> None:
    topics = SERVICES[service].consumed_topics
    initial = run_kafka(kafka, group_lag(kafka, group, topics))
    deadline = time.monotonic() + timeout
    err.print(f"start the {service.value} workers if they are not running; following the lag of {group}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"{group} catching up", total=max(initial, 1))
        while True:
            lag = run_kafka(kafka, group_lag(kafka, group, topics))
            progress.update(task, completed=max(initial - lag, 0) if initial else 1)
            if lag == 0:
                break
            if time.monotonic() > deadline:
                raise fail(f"{group} still has {lag} event(s) to process after {timeout:.0f} s", Exit.FAILED)
            time.sleep(1.0)
    console.print(f"{group} has caught up (lag 0)")
