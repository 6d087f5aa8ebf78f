"""An order's story (common/order_story.py) shaped for the page: pure, no I/O.

What the operator reads first: the status and what the saga waits for; then the path the saga took
through its states, the timeline with how long each hop took, the payment, the shipment, and every parked
event with why it was parked and the actions that re-drive it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.span_store import ReceivedSpan
from order.saga import happy_path

TERMINAL = frozenset({"COMPLETED", "REJECTED", "CANCELLED", "REFUNDED", "REFUND_FAILED"})
# The happy path, drawn before the path actually taken so a stopped saga shows where it is on the way.
HAPPY_PATH = tuple(status.value for status in happy_path())


def state_path(timeline: list[dict[str, Any]]) -> list[str]:
    """The states the saga went through, in order, each once per visit (from its timeline's moves)."""
    path: list[str] = []
    for entry in timeline:
        for state in (entry.get("status_before"), entry.get("status_after")):
            if state and (not path or path[-1] != state):
                path.append(state)
    return path


def _seconds(earlier: str, later: str) -> float | None:
    try:
        return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
    except (TypeError, ValueError):
        return None


def hop(seconds: float | None) -> str:
    """A hop's duration as an operator reads it: ms below a second, then seconds, then minutes."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def timeline_rows(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline, each entry with the time since the one before it (the hop it took)."""
    rows = []
    previous: str | None = None
    for entry in timeline:
        took = hop(_seconds(previous, entry["at"])) if previous is not None else ""
        rows.append({**entry, "took": took})
        previous = entry["at"]
    return rows


def mark_heads(letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dead letters (oldest first) with whether a retry may start at each: only the oldest parked
    letter of an order in its service (a retry of it re-runs those behind it, in order; the service
    refuses one behind another). `behind` names that head. A letter without an order stands alone.
    The recorded `blocked_by` is not used: it names the head at parking time, which may since have been
    discarded."""
    heads: dict[tuple[str, str], int] = {}
    marked = []
    for letter in letters:
        if letter.get("status", "parked") != "parked":  # retried or discarded: nothing to start
            marked.append({**letter, "retryable": False, "behind": None})
            continue
        order_id = letter.get("order_id")
        head = None if order_id is None else heads.setdefault((letter["service"], order_id), letter["id"])
        behind = None if head in (None, letter["id"]) else head
        marked.append({**letter, "retryable": behind is None, "behind": behind})
    return marked


def parked_letters(dead_letters: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every parked event of the order, with its service and whether it can be retried now."""
    return mark_heads(
        [{**letter, "service": service} for service, items in dead_letters.items() for letter in items]
    )


def trace_rows(spans: list[ReceivedSpan]) -> list[dict[str, Any]]:
    """The saga's trace as a waterfall: each span under its parent (depth-first, by start), with when it
    started after the first span, how long it took, and the outcome a consumer recorded."""
    if not spans:
        return []
    ids = {span.span_id for span in spans}
    children: dict[str | None, list[ReceivedSpan]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None  # a remote parent: a root here
        children.setdefault(parent, []).append(span)
    origin = min(span.start_ns for span in spans)
    rows: list[dict[str, Any]] = []

    def visit(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            rows.append(
                {
                    "depth": depth,
                    "service": span.service,
                    "name": span.name,
                    "at_ms": round((span.start_ns - origin) / 1e6, 1),
                    "took_ms": round(span.duration_ms, 1),
                    "outcome": span.attributes.get("saga.outcome", ""),
                }
            )
            visit(span.span_id, depth + 1)

    visit(None, 0)
    return rows


def story_view(story: dict[str, Any]) -> dict[str, Any]:
    """What the order page shows, from the story `order_story` returns."""
    order = story.get("order")
    payment = story.get("payment")
    timeline = order.get("timeline", []) if order else []
    path = state_path(timeline)
    status = order["status"] if order else None
    owner = next((part["owner"] for part in (order, payment, story.get("shipment")) if part), None)
    refund = payment.get("refund") if payment else None
    return {
        "order_id": story["order_id"],
        "owner": owner,
        "order": order,
        "status": status,
        "terminal": status in TERMINAL,
        "path": path,
        "ahead": [state for state in HAPPY_PATH if state not in path] if status not in TERMINAL else [],
        "timeline": timeline_rows(timeline),
        "payment": payment,
        "refund": refund,
        "refund_failed": refund is not None and refund.get("status") == "FAILED",
        "shipment": story.get("shipment"),
        "parked": parked_letters(story.get("dead_letters", {})),
        "pending": story.get("pending", []),
        "trace": [],  # the saga's spans, when the console receives traces (pages.py fills it)
    }
