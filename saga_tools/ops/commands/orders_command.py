"""`saga order` (an order's whole story) and `saga orders` (listing, or the sagas that stopped moving)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from common.config import Service
from common.order_story import order_story
from common.service_apis import ServiceApis
from common.tenancy import saga_id
from delivery.lifecycle import STEPS
from saga_tools.ops.command_kit import Exit, console, fail
from saga_tools.ops.commands.clients import with_apis
from saga_tools.ops.durations import parse_duration
from saga_tools.ops.listings import Listing, print_listing


def order(
    order_id: Annotated[
        str, typer.Argument(help="the order as shop:order_id (its shop's name, a colon, the shop's id)")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """An order's whole story: saga state and timeline, payment, shipment, parked events, pending work."""
    story = with_apis(lambda apis: order_story(apis, order_id))
    if as_json:
        console.print_json(json.dumps(story))
        return
    saga, payment, shipment = story["order"], story["payment"], story["shipment"]
    owner = next((part["owner"] for part in (saga, payment, shipment) if part is not None), None)
    if owner is not None:
        console.print(f"shop: {owner}")
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
            + (f", retried by {refund['retried_by']}" if refund and refund.get("retried_by") else "")
        )
    else:
        console.print("payment: none")
    console.print(f"shipment: {shipment_line(shipment)}" if shipment is not None else "shipment: none")
    parked = [(service, letter) for service, letters in story["dead_letters"].items() for letter in letters]
    for service, letter in parked:
        what = letter["event_type"] or "?"
        console.print(f"[red]parked[/red] in {service}: #{letter['id']} {what}: {letter['error']}")
    for work in story["pending"]:
        console.print(f"pending: {work}")


def shipment_line(shipment: dict[str, Any]) -> str:
    """A shipment's status and who made its carrier steps, in the carrier's order (each step's
    who-made-it column as `delivery/lifecycle.py` declares it, e.g. `shipped_by` shown as "shipped by")."""
    made = [
        f"{rules.made_by.removesuffix('_by')} by {shipment[rules.made_by]}"
        for rules in STEPS.values()
        if shipment.get(rules.made_by)
    ]
    return shipment["status"] + (f" ({', '.join(made)})" if made else "")


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


def orders(
    stuck: Annotated[bool, typer.Option("--stuck", help="only sagas not terminal and not moving")] = False,
    older_than: Annotated[str, typer.Option(help="with --stuck: idle for at least this long")] = "10m",
    status: Annotated[str | None, typer.Option(help="only orders in this status")] = None,
    shop: Annotated[str | None, typer.Option(help="only this shop's orders")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for scripts")] = False,
) -> None:
    """List orders; with --stuck, the sagas that stopped moving, what each waits for and since when."""
    try:
        idle = parse_duration(older_than)
    except ValueError as exc:
        raise fail(str(exc), Exit.USAGE) from exc

    def fetch(apis: ServiceApis) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "status": status, "owner": shop}
        if stuck:
            params["stuck_for"] = int(idle.total_seconds())
        listing: dict[str, Any] = apis.get(Service.ORDER, "/orders", **params)
        if stuck:
            # A parked event is the most common reason a saga stops: name it next to the order.
            for item in listing["items"]:
                item["parked"] = [
                    f"{service.value} #{letter['id']}: {letter['error']}"
                    for service in Service
                    for letter in apis.get(service, "/dead-letters", order_id=saga_id_of(item))["items"]
                ]
        return listing

    listing = with_apis(fetch)
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
        rows.add(saga_id_of(item), item["status"], item["updated_at"], why)
    return rows


def saga_id_of(answer: dict[str, Any]) -> str:
    """How an operator names the order of an answer: shop:order_id (what `saga order` takes)."""
    return saga_id(answer["owner"], answer["order_id"])
