"""The operator commands of `saga`: order, orders, tail, replay, dead-letters, rebuild.

Each reads the same settings as the services (completed from the local stack's record) and talks to the
services through their HTTP APIs and to Kafka as a client; none reads another service's database, except
`rebuild`, which compares the order service's own database with its rebuild.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from common import migrations
from common.config import Service, Settings, database_env_var
from common.kafka import CONSUMED_TOPICS, group_id
from common.ops.apis import NotFound, Refused, ServiceApis, ServiceUnavailable
from common.ops.console import Exit, console, err, fail, operator_settings, require_bootstrap
from common.ops.durations import parse_duration
from common.ops.groups import commit_moves, group_lag, group_members, offsets_for_time, partition_states
from common.ops.offsets import (
    PartitionMove,
    ReplayRefused,
    ReplayTarget,
    Shift,
    ToBeginning,
    ToOffsets,
    parse_partition_offset,
    plan_replay,
)
from common.ops.story import order_story
from common.ops.tables import Listing, print_listing
from common.ops.tail import TailStart, describe_record, read_topic
from order.rebuild import RebuildReport, TargetNotEmpty, rebuild_order

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    """Add the operator commands to the `saga` application."""
    app.command("order")(order)
    app.command("orders")(orders)
    app.command("tail")(tail)
    app.command("replay")(replay)
    app.command("dead-letters")(dead_letters)
    app.command("rebuild")(rebuild)


def _with_apis(action: Callable[[ServiceApis], T]) -> T:
    """Run `action` against the services, turning their failures into clear errors and exit codes."""
    with ServiceApis(operator_settings()) as apis:
        try:
            return action(apis)
        except ServiceUnavailable as exc:
            raise fail(str(exc), Exit.UNAVAILABLE) from exc
        except NotFound as exc:
            raise fail(str(exc), Exit.NOT_FOUND) from exc
        except Refused as exc:
            raise fail(f"refused ({exc.status}): {exc}", Exit.FAILED) from exc


def _kafka(bootstrap: str, work: Coroutine[Any, Any, T]) -> T:
    """Run a Kafka client coroutine; an unreachable broker is exit code 3 with the address tried."""
    try:
        return asyncio.run(work)
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        raise fail(
            f"Kafka is not reachable at {bootstrap} ({exc.__class__.__name__})", Exit.UNAVAILABLE
        ) from exc


# ─── saga order ──────────────────────────────────────────────────────────────────────────────────────


def order(
    order_id: Annotated[str, typer.Argument(help="the order's id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """An order's whole story: saga state and timeline, payment, shipment, parked events, pending work."""
    story = _with_apis(lambda apis: order_story(apis, order_id))
    if as_json:
        console.print_json(json.dumps(story))
        return
    saga, payment, shipment = story["order"], story["payment"], story["shipment"]
    if saga is None:
        console.print(f"[bold]order {order_id}[/bold]: unknown to the order service")
    else:
        amount = saga["amount"]
        console.print(
            f"[bold]order {order_id}[/bold]: [bold]{saga['status']}[/bold]"
            f"  {amount['amount_minor']} {amount['currency']}  customer {saga['customer_id']}"
            + (f"  cancelled: {saga['cancel_reason']}" if saga.get("cancel_reason") else "")
        )
        if saga.get("waiting_for"):
            console.print(f"  waiting for {saga['waiting_for']} (since {saga['updated_at']})")
        console.print(timeline_table(saga["timeline"]))
    if payment is not None:
        refund = payment.get("refund")
        console.print(
            f"payment {payment['payment_id']}: {payment['status']}"
            + (f" ({payment['failure_reason']})" if payment.get("failure_reason") else "")
            + (f"; refund {refund['status']} after {refund['attempts']} attempt(s)" if refund else "")
        )
    else:
        console.print("payment: none")
    console.print(f"shipment: {shipment['status']}" if shipment is not None else "shipment: none")
    parked = [(service, letter) for service, letters in story["dead_letters"].items() for letter in letters]
    for service, letter in parked:
        what = letter["event_type"] or "?"
        console.print(f"[red]parked[/red] in {service}: #{letter['id']} {what}: {letter['error']}")
    for work in story["pending"]:
        console.print(f"pending: {work}")


def timeline_table(entries: list[dict[str, Any]]) -> Table:
    """An order's timeline; when narrow, columns fold (never cut with "…") and event types stay whole."""
    timeline = Table(title="timeline", title_justify="left")
    for header in ("at", "kind", "event", "status", "detail"):
        timeline.add_column(header, overflow="fold", no_wrap=header in ("kind", "event"))
    for entry in entries:
        moved = f"{entry['status_before'] or '-'} → {entry['status_after'] or '-'}"
        detail = escape(entry["detail"] or "")
        timeline.add_row(entry["at"], entry["kind"], entry["event_type"], moved, detail)
    return timeline


# ─── saga orders ─────────────────────────────────────────────────────────────────────────────────────


def orders(
    stuck: Annotated[bool, typer.Option("--stuck", help="only sagas not terminal and not moving")] = False,
    older_than: Annotated[str, typer.Option(help="with --stuck: idle for at least this long")] = "10m",
    status: Annotated[str | None, typer.Option(help="only orders in this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """List orders; with --stuck, the sagas that stopped moving, what each waits for and since when."""
    try:
        idle = parse_duration(older_than)
    except ValueError as exc:
        raise fail(str(exc), Exit.USAGE) from exc

    def fetch(apis: ServiceApis) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "status": status}
        if stuck:
            params["stuck_for"] = int(idle.total_seconds())
        listing: dict[str, Any] = apis.get(Service.ORDER, "/orders", **params)
        if stuck:
            # A parked event is the most common reason a saga stops: name it next to the order.
            for item in listing["items"]:
                item["parked"] = [
                    f"{service.value} #{letter['id']}: {letter['error']}"
                    for service in Service
                    for letter in apis.get(service, "/dead-letters", order_id=item["order_id"])["items"]
                ]
        return listing

    listing = _with_apis(fetch)
    if as_json:
        console.print_json(json.dumps(listing))
        return
    title = f"stuck for {older_than} or more" if stuck else "orders"
    print_listing(console, orders_listing(listing, f"{title} ({listing['total']})"))


def orders_listing(listing: dict[str, Any], title: str) -> Listing:
    """The order service's listing as the operator reads it: what each order waits for, what is parked."""
    rows = Listing(title, "order", ("status", "since", "waiting for"), whole=("status",))
    for item in listing["items"]:
        why = escape(item.get("waiting_for") or "")
        if item.get("parked"):
            why += "\n[red]parked:[/red] " + escape("; ".join(item["parked"]))
        rows.add(item["order_id"], item["status"], item["updated_at"], why)
    return rows


# ─── saga tail ───────────────────────────────────────────────────────────────────────────────────────


def tail(
    topic: Annotated[Service, typer.Argument(help="payment, order or delivery")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="from the first event kept")
    ] = False,
    since: Annotated[str | None, typer.Option(help="from this long ago, e.g. 1h")] = None,
    order_id: Annotated[str | None, typer.Option("--order", help="only this order's events")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
) -> None:
    """A topic's events decoded, one line each. Without --from-beginning or --since: new events only."""
    if from_beginning and since:
        raise fail("give --from-beginning or --since, not both", Exit.USAGE)
    since_ms = None
    if since is not None:
        try:
            since_ms = int((datetime.now(UTC) - parse_duration(since)).timestamp() * 1000)
        except ValueError as exc:
            raise fail(str(exc), Exit.USAGE) from exc
    if not (from_beginning or since or follow):
        err.print("only new events are shown without --from-beginning or --since; add --follow to wait")
    bootstrap = require_bootstrap(operator_settings())
    start = TailStart(from_beginning=from_beginning, since_ms=since_ms)

    async def print_events() -> int:
        count = 0
        async for record in read_topic(bootstrap, topic.value, start, follow=follow, order_id=order_id):
            console.print(describe_record(record), highlight=False, soft_wrap=True)
            count += 1
        return count

    try:
        count = _kafka(bootstrap, print_events())
    except KeyboardInterrupt:
        return
    err.print(f"{count} event(s)")


# ─── saga replay ─────────────────────────────────────────────────────────────────────────────────────


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
    bootstrap = require_bootstrap(operator_settings())
    group = group_id(service)
    members = _members_allowing_replay(bootstrap, service, wait_for_stop, dry_run)
    target = _replay_target(bootstrap, topic.value, to_beginning, to_time, to_offset, shift)
    states = _kafka(bootstrap, partition_states(bootstrap, group, [topic.value]))
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
        _kafka(bootstrap, commit_moves(bootstrap, group, moves))
    except (CommitFailedError, KafkaError) as exc:
        raise fail(
            f"the broker refused the new offsets ({exc.__class__.__name__}): a {service.value} worker "
            "probably started meanwhile; stop it and run the replay again",
            Exit.CONFLICT,
        ) from exc
    console.print(f"rewound {group} on {topic.value}: {sum(m.replayed for m in moves)} event(s) to see again")
    if follow:
        _follow_lag(bootstrap, service, group, timeout)


def _check_replay_options(service: Service, topic: Service, chosen: list[object], shift: int | None) -> None:
    """A replay names one of the service's input topics and exactly one target, and only moves back."""
    if topic.value not in CONSUMED_TOPICS[service]:
        reads = ", ".join(CONSUMED_TOPICS[service])
        raise fail(f"{service.value} does not read {topic.value} (it reads: {reads})", Exit.USAGE)
    if sum(1 for option in chosen if option) != 1:
        raise fail("give exactly one of --to-beginning, --to-time, --to-offset, --shift", Exit.USAGE)
    if shift is not None and shift > 0:
        raise fail("--shift must be negative: a replay moves back", Exit.USAGE)


def _members_allowing_replay(bootstrap: str, service: Service, wait_for_stop: float, dry_run: bool) -> int:
    """The group's live members (after waiting up to `wait_for_stop` for them to leave); a real replay
    of a group with members is refused: the broker would reject the commit anyway."""
    group = group_id(service)
    members = _kafka(bootstrap, _wait_until_empty(bootstrap, group, wait_for_stop))
    if members and not dry_run:
        raise fail(
            f"the {service.value} workers are running ({members} member(s) in group {group}); stop them "
            f"first, or pass --wait-for-stop SECONDS to wait for them to stop",
            Exit.CONFLICT,
        )
    return members


async def _wait_until_empty(bootstrap: str, group: str, wait: float) -> int:
    deadline = time.monotonic() + wait
    while True:
        members = await group_members(bootstrap, group)
        if not members or time.monotonic() >= deadline:
            return members
        await asyncio.sleep(1.0)


def _replay_target(
    bootstrap: str,
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
    return ToOffsets(_kafka(bootstrap, offsets_for_time(bootstrap, topic, int(at.timestamp() * 1000))))


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


def _follow_lag(bootstrap: str, service: Service, group: str, timeout: float) -> None:
    topics = CONSUMED_TOPICS[service]
    initial = _kafka(bootstrap, group_lag(bootstrap, group, topics))
    deadline = time.monotonic() + timeout
    err.print(f"start the {service.value} workers if they are not running; following the lag of {group}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"{group} catching up", total=max(initial, 1))
        while True:
            lag = _kafka(bootstrap, group_lag(bootstrap, group, topics))
            progress.update(task, completed=max(initial - lag, 0) if initial else 1)
            if lag == 0:
                break
            if time.monotonic() > deadline:
                raise fail(f"{group} still has {lag} event(s) to process after {timeout:.0f} s", Exit.FAILED)
            time.sleep(1.0)
    console.print(f"{group} has caught up (lag 0)")


# ─── saga dead-letters ───────────────────────────────────────────────────────────────────────────────


class LetterAction(StrEnum):
    LIST = "list"
    SHOW = "show"
    RETRY = "retry"
    DISCARD = "discard"


def dead_letters(
    service: Annotated[Service, typer.Argument(help="payment, order or delivery")],
    action: Annotated[LetterAction, typer.Argument(help="list, show, retry or discard")] = LetterAction.LIST,
    letter_id: Annotated[int | None, typer.Argument(help="the dead letter's id")] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="with retry: every parked letter")] = False,
    status: Annotated[str, typer.Option(help="with list: parked, retried, discarded or all")] = "parked",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Events a service parked: list them, show one, retry one (or --all) or discard one."""
    if action in (LetterAction.SHOW, LetterAction.DISCARD) and letter_id is None:
        raise fail(f"{action.value} needs a dead letter ID", Exit.USAGE)
    if action is LetterAction.RETRY and (letter_id is None) == (not retry_all):
        raise fail("retry needs a dead letter ID or --all (one of them)", Exit.USAGE)

    def act(apis: ServiceApis) -> Any:
        if action is LetterAction.LIST:
            return apis.get(service, "/dead-letters", status=status, limit=1000)
        if action is LetterAction.SHOW:
            return apis.get(service, f"/dead-letters/{letter_id}")
        if action is LetterAction.DISCARD:
            return apis.post(service, f"/dead-letters/{letter_id}/discard")
        if letter_id is not None:
            return apis.post(service, f"/dead-letters/{letter_id}/retry")
        results: list[dict[str, Any]] = []
        for head in _parked_heads(apis, service):
            try:
                results += apis.post(service, f"/dead-letters/{head}/retry")["results"]
            except Refused as exc:  # e.g. retried meanwhile by someone else: report it, go on
                results.append({"id": head, "outcome": f"refused: {exc}"})
        return {"results": results}

    result = _with_apis(act)
    if as_json or action is LetterAction.SHOW:
        console.print_json(json.dumps(result))
    elif action is LetterAction.LIST:
        _print_letters(result["items"])
    elif action is LetterAction.DISCARD:
        console.print(f"dead letter {result['id']}: {result['status']}")
    else:
        for outcome in result["results"]:
            console.print(f"dead letter {outcome['id']}: {outcome['outcome']}")
        if any(outcome["outcome"] not in ("applied", "duplicate") for outcome in result["results"]):
            raise typer.Exit(int(Exit.FAILED))


def _print_letters(items: list[dict[str, Any]]) -> None:
    letters = Listing(
        "dead letters",
        "order",
        ("id", "type", "topic@offset", "status", "parked at", "error"),
        whole=("id", "status"),
    )
    for letter in items:
        letters.add(
            letter["order_id"] or "-",
            str(letter["id"]),
            escape(letter["event_type"] or "?"),
            escape(f"{letter['topic']}[{letter['partition']}]@{letter['offset']}"),
            letter["status"],
            letter["parked_at"],
            escape(letter["error"]),
        )
    print_listing(console, letters)


def _parked_heads(apis: ServiceApis, service: Service) -> list[int]:
    """The parked letters to retry for --all: the oldest of each order (those behind it follow it)."""
    letters = apis.get(service, "/dead-letters", status="parked", limit=1000)["items"]
    heads: dict[str, int] = {}
    loose = []
    for letter in letters:  # oldest first
        if letter["order_id"] is None:
            loose.append(letter["id"])
        else:
            heads.setdefault(letter["order_id"], letter["id"])
    return sorted([*heads.values(), *loose])


# ─── saga rebuild ────────────────────────────────────────────────────────────────────────────────────


def rebuild(
    service: Annotated[Service, typer.Argument(help="order (the others cannot be rebuilt: see README)")],
    into: Annotated[str, typer.Option("--into", help="an empty database to rebuild into")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="rebuild, diff, then roll back")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Rebuild a service's state from the topics into an empty database and diff it with the live one.

    Nothing is published and no gateway is called. Exit code 7 when the rebuild differs from the live state.
    """
    if service is not Service.ORDER:
        raise fail(
            f"{service.value} cannot be rebuilt from the topics: its state starts outside Kafka "
            "(payment: checkout requests and the gateway; delivery: stock set through its API)",
            Exit.USAGE,
        )
    settings = operator_settings()
    bootstrap = require_bootstrap(settings)
    live = settings.database_url(Service.ORDER)
    if not live:
        raise fail(f"{database_env_var(Service.ORDER)} is not set (the live database)", Exit.USAGE)
    target = Settings.model_validate({database_env_var(Service.ORDER): into}).database_url(Service.ORDER)
    assert target is not None
    if target == live:
        raise fail("--into is the live database; rebuild into an empty one", Exit.USAGE)
    deadline = timedelta(seconds=settings.delivery_deadline_seconds)
    try:
        if not dry_run:
            migrations.upgrade(Service.ORDER, target)
        report = _kafka(bootstrap, rebuild_order(bootstrap, target, live, deadline=deadline, dry_run=dry_run))
    except TargetNotEmpty as exc:
        raise fail(str(exc), Exit.CONFLICT) from exc
    except (DBAPIError, psycopg.OperationalError) as exc:
        problem = f"a database is not reachable or refused the rebuild: {str(exc).splitlines()[0]}"
        raise fail(problem, Exit.UNAVAILABLE) from exc
    _print_rebuild(report, as_json)
    if not report.diff.clean:
        raise typer.Exit(int(Exit.DIFFERENT))


def _print_rebuild(report: RebuildReport, as_json: bool) -> None:
    diff = report.diff
    if as_json:
        summary = {
            "events_read": report.events_read,
            "undecodable": report.undecodable,
            "duplicates": report.duplicates,
            "outcomes": report.outcomes,
            "committed": report.committed,
            "same": diff.same,
            "only_live": diff.only_live,
            "only_rebuilt": diff.only_rebuilt,
            "different": [{"order_id": d.key, "changes": d.changes} for d in diff.different],
        }
        console.print_json(json.dumps(summary, default=str))
        return
    console.print(
        f"read {report.events_read} events ({report.undecodable} undecodable, {report.duplicates} "
        f"duplicates); saga inputs {report.outcomes}; "
        + ("rebuilt database committed" if report.committed else "dry run: rolled back")
    )
    table = Listing(f"diff ({diff.same} orders equal)", "order", ("where", "column", "live", "rebuilt"))
    for key in diff.only_live:
        table.add(key, "only live", "", "", "")
    for key in diff.only_rebuilt:
        table.add(key, "only rebuilt", "", "", "")
    for row in diff.different:
        for column, (was, now) in row.changes.items():
            table.add(row.key, "different", column, escape(str(was)), escape(str(now)))
    print_listing(console, table)
