"""`saga dead-letters`: list, show, retry (one, or --all) or discard the events a service parked."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from common.config import Service
from common.service_apis import Refused, ServiceApis
from saga_tools.ops.command_kit import Exit, console, fail
from saga_tools.ops.commands.clients import with_apis
from saga_tools.ops.listings import Listing, print_listing


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

    result = with_apis(act)
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
