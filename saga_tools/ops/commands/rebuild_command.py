"""`saga rebuild`: the order service's state rebuilt from the topics into an empty database, diffed with
the live one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from common.config import Service, Settings, database_env_var
from saga_tools.ops.command_kit import Exit, console, fail, operator_settings, require_kafka
from saga_tools.ops.commands.clients import run_kafka
from saga_tools.ops.listings import Listing, print_listing

if TYPE_CHECKING:
    from saga_tools.ops.order_rebuild import RebuildReport


def rebuild(
    service: Annotated[
        Service, typer.Argument(help="order (the others cannot be rebuilt: see docs/operators/cli.md)")
    ],
    into: Annotated[str, typer.Option("--into", help="an empty database to rebuild into")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="rebuild, diff, then roll back")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """Rebuild a service's state from the topics into an empty database and diff it with the live one.

    Nothing is published and no gateway is called. Exit code 7 when the rebuild differs from the live state.
    """
    # Imported here: SQLAlchemy, Alembic and the order service's code are for this command only.
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from saga_tools import migrations
    from saga_tools.ops.order_rebuild import TargetNotEmpty, rebuild_order

    if service is not Service.ORDER:
        raise fail(
            f"{service.value} cannot be rebuilt from the topics: its state starts outside Kafka "
            "(payment: checkout requests and the gateway; delivery: stock set through its API)",
            Exit.USAGE,
        )
    settings = operator_settings()
    kafka = require_kafka(settings)
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
        report = run_kafka(kafka, rebuild_order(kafka, target, live, deadline=deadline, dry_run=dry_run))
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
