"""`saga webhooks …`: every shop's webhook endpoints, their state and attempts, and what an operator does
about them (disable, enable, send again, remove, register one for a shop)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from common.config import Service
from saga_tools.ops.command_kit import console
from saga_tools.ops.commands.clients import with_apis
from saga_tools.ops.durations import parse_duration
from saga_tools.ops.listings import Listing, print_listing

ORD = Service.ORDER
WebhookId = Annotated[str, typer.Argument(help="the endpoint's id (from `saga webhooks list`)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]

app = typer.Typer(
    help="Shops' webhook endpoints: state, attempts, disable, enable, resend.", no_args_is_help=True
)


@app.command("list")
def list_endpoints(
    shop: Annotated[str | None, typer.Option(help="only this shop's endpoints")] = None,
    as_json: AsJson = False,
) -> None:
    """Every shop's endpoints: enabled or why not, events pending, last success, last error."""
    found = with_apis(lambda apis: apis.get(ORD, "/webhooks", owner=shop))["items"]
    if as_json:
        console.print_json(json.dumps(found))
        return
    listing = Listing(
        f"{len(found)} webhook endpoint(s)",
        "id",
        ["shop", "url", "state", "pending", "last success", "last error"],
        whole=["shop", "state", "pending"],
    )
    for endpoint in found:
        listing.add(
            endpoint["id"],
            escape(endpoint["owner"]),
            escape(endpoint["url"]),
            _state(endpoint),
            str(endpoint["pending"]),
            endpoint["last_success_at"] or "never",
            escape(endpoint["last_error"] or ""),
        )
    print_listing(console, listing)


@app.command("show")
def show(webhook_id: WebhookId, as_json: AsJson = False) -> None:
    """One endpoint and its last attempts."""
    endpoint, attempts = with_apis(
        lambda apis: (
            apis.get(ORD, f"/webhooks/{webhook_id}"),
            apis.get(ORD, f"/webhooks/{webhook_id}/attempts", limit=20)["items"],
        )
    )
    if as_json:
        console.print_json(json.dumps({**endpoint, "attempts": attempts}))
        return
    console.print(
        f"[bold]{escape(endpoint['url'])}[/bold]  shop {escape(endpoint['owner'])}  {_state(endpoint)}"
    )
    console.print(f"  events: {', '.join(endpoint['event_types'])}")
    console.print(
        f"  pending {endpoint['pending']}; last success {endpoint['last_success_at'] or 'never'};"
        f" failing since {endpoint['failing_since'] or '-'}"
    )
    if endpoint["last_error"]:
        console.print(f"  last error: {escape(endpoint['last_error'])}")
    print_attempts(attempts)


@app.command("attempts")
def attempts(
    webhook_id: WebhookId,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many, newest first")] = 50,
    as_json: AsJson = False,
) -> None:
    """An endpoint's attempts, newest first: the event, the answer, how long it took."""
    found = with_apis(lambda apis: apis.get(ORD, f"/webhooks/{webhook_id}/attempts", limit=limit))["items"]
    if as_json:
        console.print_json(json.dumps(found))
        return
    print_attempts(found)


@app.command("disable")
def disable(webhook_id: WebhookId) -> None:
    """Stop sending to an endpoint (its pending events are kept)."""
    endpoint = with_apis(lambda apis: apis.post(ORD, f"/webhooks/{webhook_id}/disable"))
    console.print(f"{webhook_id}: {_state(endpoint)}, {endpoint['pending']} pending")


@app.command("enable")
def enable(webhook_id: WebhookId) -> None:
    """Send to an endpoint again: its pending events go out now, in order."""
    endpoint = with_apis(lambda apis: apis.post(ORD, f"/webhooks/{webhook_id}/enable"))
    console.print(f"{webhook_id}: {_state(endpoint)}, {endpoint['pending']} pending")


@app.command("resend")
def resend(
    webhook_id: WebhookId,
    event: Annotated[str | None, typer.Option(help="one event's id")] = None,
    since: Annotated[
        str | None, typer.Option(help="every event since then: a time (ISO 8601) or an age (15m, 2h, 1d)")
    ] = None,
) -> None:
    """Send one event again, or every event of the endpoint's types since a time."""
    if (event is None) == (since is None):
        raise typer.BadParameter("give exactly one of --event and --since")
    body = {"event_id": event} if event is not None else {"since": _since(since or "")}
    queued = with_apis(lambda apis: apis.post(ORD, f"/webhooks/{webhook_id}/resend", body))["queued"]
    console.print(f"{queued} event(s) queued for {webhook_id}")


@app.command("delete")
def delete(
    webhook_id: WebhookId,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Remove an endpoint and what was pending for it."""
    if not yes:
        typer.confirm(f"remove webhook endpoint {webhook_id} and its pending events?", abort=True)
    with_apis(lambda apis: apis.delete(ORD, f"/webhooks/{webhook_id}"))
    console.print(f"{webhook_id}: removed")


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="where to POST the events")],
    shop: Annotated[str, typer.Option(help="the shop whose orders it receives")],
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="an event type (repeat); all if omitted")
    ] = None,
    description: Annotated[str | None, typer.Option(help="what it is for")] = None,
) -> None:
    """Register an endpoint for a shop; prints its signing secret, which is shown this once."""
    body: dict[str, Any] = {"url": url, "owner": shop, "description": description}
    if event_type:
        body["event_types"] = event_type
    created = with_apis(lambda apis: apis.post(ORD, "/webhooks", body))
    console.print(f"{created['id']}: {escape(created['url'])} for {escape(created['owner'])}")
    console.print(f"signing secret (shown once, give it to the shop): {created['secret']}")


def print_attempts(found: list[dict[str, Any]]) -> None:
    listing = Listing(
        f"{len(found)} attempt(s), newest first",
        "event",
        ["at", "order", "type", "#", "answer", "ms"],
        whole=["#", "answer"],
    )
    for attempt in found:
        answer = "ok" if attempt["delivered"] else (attempt["error"] or f"HTTP {attempt['status_code']}")
        listing.add(
            attempt["event_id"],
            attempt["at"],
            escape(attempt["order_id"] or ""),
            attempt["event_type"] or "",
            str(attempt["attempt"]),
            escape(answer),
            f"{attempt['latency_ms']:.0f}",
        )
    print_listing(console, listing)


def _state(endpoint: dict[str, Any]) -> str:
    if endpoint["enabled"]:
        return "failing" if endpoint["failing_since"] else "enabled"
    return f"disabled ({endpoint['disabled_reason']})"


def _since(text: str) -> str:
    """An ISO 8601 time (UTC if it names no zone), or an age (`15m`) as the time that long ago."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        try:
            return (datetime.now(UTC) - parse_duration(text)).isoformat()
        except ValueError as exc:
            raise typer.BadParameter(f"not a time or an age: {text}") from exc
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).isoformat()
