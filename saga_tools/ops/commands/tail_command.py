"""`saga tail`: a topic's events decoded, one line each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from common.config import Service
from saga_tools.ops.command_kit import Exit, console, err, fail, operator_settings, require_kafka
from saga_tools.ops.commands.clients import run_kafka
from saga_tools.ops.durations import parse_duration
from saga_tools.ops.topic_reader import TailStart, describe_record, read_topic


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
    kafka = require_kafka(operator_settings())
    start = TailStart(from_beginning=from_beginning, since_ms=since_ms)

    async def print_events() -> int:
        count = 0
        async for record in read_topic(kafka, topic.value, start, follow=follow, order_id=order_id):
            console.print(describe_record(record), highlight=False, soft_wrap=True)
            count += 1
        return count

    try:
        count = run_kafka(kafka, print_events())
    except KeyboardInterrupt:
        return
    err.print(f"{count} event(s)")
