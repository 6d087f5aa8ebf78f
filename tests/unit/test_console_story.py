"""An order's story rendered from the dict common/order_story.py returns: the path, the hops, the parked
events with their reason and the buttons that re-drive them; nothing a service answers becomes markup."""

from __future__ import annotations

from typing import Any

from console.rendering import render_text, templates
from console.story_view import hop, mark_heads, state_path, story_view
from tests.carrier_steps import happy_statuses


def entry(
    at: str, event: str, before: str | None, after: str | None, kind: str = "received"
) -> dict[str, Any]:
    return {
        "at": at,
        "kind": kind,
        "event_type": event,
        "event_id": None,
        "status_before": before,
        "status_after": after,
        "detail": None,
    }


def story(**changes: Any) -> dict[str, Any]:
    """A saga stuck in SCHEDULED: its Shipped parked in the order service behind an unreadable event."""
    order = {
        "order_id": "o-1",
        "owner": "acme",
        "status": "SCHEDULED",
        "customer_id": "c-1",
        "amount": {"amount_minor": 1250, "currency": "EUR"},
        "cancel_reason": None,
        "waiting_for": "the carrier: Shipped from delivery",
        "created_at": "2026-12-06T10:00:00+00:00",
        "updated_at": "2026-12-06T10:00:00.450000+00:00",
        "timeline": [
            entry("2026-12-06T10:00:00+00:00", "PaymentCompleted", None, "PLACED"),
            entry("2026-12-06T10:00:00.250000+00:00", "OrderPlaced", "PLACED", "PLACED", kind="emitted"),
            entry("2026-12-06T10:00:02.450000+00:00", "DeliveryScheduled", "PLACED", "SCHEDULED"),
        ],
    }
    letters = [
        {
            "id": 7,
            "order_id": "acme:o-1",
            "event_type": "Shipped",
            "error": "event version 99 is newer than the supported one",
            "blocked_by": None,
            "parked_at": "2026-12-06T10:00:03+00:00",
        },
        {
            "id": 8,
            "order_id": "acme:o-1",
            "event_type": "Delivered",
            "error": "waiting behind dead letter 7",
            "blocked_by": 7,
            "parked_at": "2026-12-06T10:00:04+00:00",
        },
    ]
    base = {
        "order_id": "acme:o-1",
        "order": order,
        "payment": {
            "owner": "acme",
            "status": "CAPTURED",
            "amount": {"amount_minor": 1250, "currency": "EUR"},
            "failure_reason": None,
            "refund": None,
        },
        "shipment": {
            "owner": "acme",
            "status": "DELIVERED",
            "shipped_by": "carrier",
            "delivered_by": "carrier",
            "tracking_code": "T-1",
            "short": None,
        },
        "dead_letters": {"payment": [], "order": letters, "delivery": []},
        "pending": [],
    }
    return {**base, **changes}


def rendered(the_story: dict[str, Any]) -> str:
    return render_text(templates(), "_story.html", story=story_view(the_story), csrf="tok-123", here="/")


def test_the_path_lists_each_state_the_saga_visited_in_order() -> None:
    assert state_path(story()["order"]["timeline"]) == ["PLACED", "SCHEDULED"]
    view = story_view(story())
    # Ahead: the statuses of the carrier's steps (SHIPPED), then COMPLETED.
    assert view["path"] == ["PLACED", "SCHEDULED"] and view["ahead"] == happy_statuses()[2:]


def test_each_timeline_entry_says_how_long_its_hop_took() -> None:
    rows = story_view(story())["timeline"]
    assert [row["took"] for row in rows] == ["", "250 ms", "2.2 s"]
    assert hop(300) == "5.0 min" and hop(None) == ""


def test_a_parked_event_is_shown_with_its_reason_and_only_the_first_offers_a_retry() -> None:
    html = rendered(story())
    assert "event version 99 is newer than the supported one" in html
    assert 'action="/dead-letters/order/7/retry"' in html
    assert 'action="/dead-letters/order/8/retry"' not in html  # behind 7: 7's retry re-runs it
    assert "behind #7" in html
    assert 'action="/dead-letters/order/8/discard"' in html
    assert "Waiting for the carrier: Shipped from delivery" in html


def test_every_action_form_carries_the_sessions_csrf_token_and_swaps_the_story_in_place() -> None:
    html = rendered(story())
    forms = html.count("<form")
    assert forms == 3 and html.count('name="csrf_token" value="tok-123"') == forms
    assert html.count('hx-target="#story"') == forms
    assert 'hx-get="/orders/acme:o-1/story" hx-trigger="every 2s"' in html


def test_once_the_head_is_discarded_the_next_parked_event_offers_the_retry() -> None:
    letters = [
        {"id": 3, "service": "order", "order_id": "acme:o-1", "status": "discarded", "blocked_by": None},
        {"id": 4, "service": "order", "order_id": "acme:o-1", "status": "parked", "blocked_by": 3},
        {"id": 5, "service": "order", "order_id": "acme:o-1", "status": "parked", "blocked_by": 3},
        {"id": 6, "service": "delivery", "order_id": "acme:o-1", "status": "parked", "blocked_by": None},
        {"id": 9, "service": "order", "order_id": None, "status": "parked", "blocked_by": None},
    ]
    marked = {(letter["service"], letter["id"]): letter for letter in mark_heads(letters)}
    assert not marked[("order", 3)]["retryable"]  # already resolved
    assert marked[("order", 4)]["retryable"]  # the recorded blocker is gone
    assert (marked[("order", 5)]["retryable"], marked[("order", 5)]["behind"]) == (False, 4)
    assert marked[("delivery", 6)]["retryable"]  # each service keeps its own order
    assert marked[("order", 9)]["retryable"]  # no order: it waits behind nothing


def test_a_failed_refund_offers_a_retry() -> None:
    payment = {**story()["payment"], "status": "CAPTURED"}
    payment["refund"] = {
        "status": "FAILED",
        "attempts": 5,
        "last_error": "provider down",
        "retried_by": None,
    }
    html = rendered(story(payment=payment, dead_letters={}))
    assert 'action="/refunds/acme:o-1/retry"' in html and "provider down" in html


def test_what_the_services_answer_is_escaped_not_rendered_as_markup() -> None:
    the_story = story()
    the_story["dead_letters"]["order"][0]["error"] = "<script>alert(1)</script>"
    html = rendered(the_story)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_completed_order_shows_no_road_ahead_and_no_parked_events() -> None:
    done = story(dead_letters={"payment": [], "order": [], "delivery": []})
    done["order"] = {**done["order"], "status": "COMPLETED", "waiting_for": None}
    done["order"]["timeline"] = [
        *done["order"]["timeline"],
        entry("2026-12-06T10:00:05+00:00", "Delivered", "SCHEDULED", "COMPLETED"),
    ]
    view = story_view(done)
    assert view["terminal"] and view["ahead"] == [] and view["path"][-1] == "COMPLETED"
    html = rendered(done)
    assert 'id="parked"' not in html and 'data-status="COMPLETED"' in html
