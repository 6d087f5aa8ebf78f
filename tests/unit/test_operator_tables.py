"""Operator listings never cut an identifier: at 80 columns (a pipe, a narrow terminal) or any other width."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from rich.console import Console

from saga_tools.ops.commands.orders_command import orders_listing, timeline_table
from saga_tools.ops.listings import Listing, fits_as_table, print_listing

WAITING = "the carrier: Shipped from delivery"
PARKED = "delivery #12: undecodable: not JSON (Expecting value: line 1 column 1 (char 0)) [raw]"


def stuck_orders(count: int = 4) -> dict[str, object]:
    """What `GET /orders?stuck_for=` answers, with the parked events `saga orders --stuck` adds."""
    items = [
        {
            "order_id": uuid.uuid4().hex,
            "owner": "acme",
            "status": "REFUND_FAILED" if index % 2 else "SCHEDULED",
            "updated_at": "2026-11-27T10:00:00.123456+00:00",
            "waiting_for": WAITING,
            "parked": [PARKED] if index == 0 else [],
        }
        for index in range(count)
    ]
    return {"items": items, "total": len(items)}


def render(listing: Listing, width: int) -> str:
    out = StringIO()
    print_listing(Console(width=width, file=out, color_system=None), listing)
    return out.getvalue()


def ids_of(listing: dict[str, object]) -> list[str]:
    """The orders as an operator names them: shop:order_id."""
    return [f"{item['owner']}:{item['order_id']}" for item in listing["items"]]  # type: ignore[attr-defined]


def test_the_stuck_list_at_80_columns_shows_every_full_order_id_on_one_line() -> None:
    listing = stuck_orders()
    output = render(orders_listing(listing, "stuck for 10m or more (4)"), 80)
    lines = output.splitlines()
    for order_id in ids_of(listing):
        assert any(order_id in line for line in lines), output
    assert "…" not in output
    assert max(len(line) for line in lines) <= 80
    assert "REFUND_FAILED" in output and "(char" in output and "[raw]" in output  # the rest is all there


@pytest.mark.parametrize("width", [38, 40, 50, 60, 79, 80, 100, 160, 250])
def test_every_width_that_can_hold_an_id_shows_it_whole(width: int) -> None:
    listing = stuck_orders()
    output = render(orders_listing(listing, "stuck"), width)
    lines = output.splitlines()
    for order_id in ids_of(listing):
        assert any(order_id in line for line in lines), output
    assert "…" not in output
    assert max(len(line) for line in lines) <= width


@pytest.mark.parametrize("width", [12, 20, 31, 36])
def test_narrower_than_an_id_it_folds_and_nothing_of_it_is_lost(width: int) -> None:
    listing = stuck_orders(2)
    output = render(orders_listing(listing, "stuck"), width)
    joined = "".join(line.strip() for line in output.splitlines())
    for order_id in ids_of(listing):
        assert order_id in joined, output
    assert "…" not in output


def test_a_table_only_when_every_column_keeps_room_to_be_read() -> None:
    listing = orders_listing(stuck_orders(), "stuck")
    assert fits_as_table(listing, 100)
    assert not fits_as_table(listing, 60)
    assert render(listing, 100).count("┃") > 0  # a table at 100
    assert "┃" not in render(listing, 60)  # records below


def test_any_listing_keeps_its_long_ids_whole_with_many_columns() -> None:
    letters = Listing("dead letters", "order", ("id", "type", "topic@offset", "status", "parked at", "error"))
    ids = [uuid.uuid4().hex + "-with-a-suffix" for _ in range(3)]
    for number, order_id in enumerate(ids):
        letters.add(order_id, str(number), "OrderPlaced", "order[1]@42", "parked", "2026-11-27T10:00", PARKED)
    for width in (80, 120, 250):
        lines = render(letters, width).splitlines()
        assert all(any(order_id in line for line in lines) for order_id in ids), "\n".join(lines)


def test_an_order_timeline_at_80_columns_folds_and_keeps_event_types_whole() -> None:
    entries = [
        {
            "at": "2026-11-27T10:00:00.123456+00:00",
            "kind": kind,
            "event_type": event,
            "status_before": before,
            "status_after": after,
            "detail": "not applicable in CANCELLED: already cancelled [late]",
        }
        for kind, event, before, after in [
            ("received", "PaymentCompleted", None, "PLACED"),
            ("requested", "CANCEL_REQUESTED", "SCHEDULED", "CANCELLED"),
            ("ignored", "DeliveryScheduled", "CANCELLED", "CANCELLED"),
        ]
    ]
    out = StringIO()
    Console(width=80, file=out, color_system=None).print(timeline_table(entries))
    output = out.getvalue()
    assert "…" not in output
    for event in ("PaymentCompleted", "CANCEL_REQUESTED", "DeliveryScheduled"):
        assert event in output, output
    assert "[late]" in output
