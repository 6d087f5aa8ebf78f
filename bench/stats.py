"""Figures of one benchmark step: latency percentiles, rates, whether the backlog held, webhooks. Pure."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN for none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points; 0 for fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


@dataclass(frozen=True)
class StepFigures:
    offered_rate: float
    seconds: float
    accepted: int
    finished: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    completed_per_second: float
    backlog_growth_per_second: float
    # How late the generator started its latest-started checkout against the schedule.
    schedule_slip_ms: float
    sustainable: bool


# The generator shares the machine: if it cannot start checkouts on time, the offered rate was not
# really offered (and latency from the 202 would hide the wait: coordinated omission).
MAX_SCHEDULE_SLIP_S = 1.0


def summarise(
    offered_rate: float,
    seconds: float,
    latencies_s: Sequence[float],
    accepted: int,
    backlog: Sequence[tuple[float, float]],
    finished_in_window: int,
    schedule_slip_s: float = 0.0,
) -> StepFigures:
    """Business rule of "sustainable": every accepted saga finished; over the second half of the run the
    backlog (checkouts not answered yet, accepted sagas not yet terminal) grew by less than 2 % of the
    offered rate per second — a backlog that keeps growing means the platform falls behind however long
    the run; and the generator started every checkout less than `MAX_SCHEDULE_SLIP_S` after its
    scheduled time — a generator that falls behind offers less than the rate, and the backlog it
    measures stays flat for that reason.
    """
    ordered = sorted(latencies_s)
    second_half = [(t, b) for t, b in backlog if t >= seconds / 2]
    growth = slope(second_half)
    finished = len(ordered)
    return StepFigures(
        offered_rate=offered_rate,
        seconds=seconds,
        accepted=accepted,
        finished=finished,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p95_ms=percentile(ordered, 0.95) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] * 1000) if ordered else math.nan,
        completed_per_second=finished_in_window / seconds if seconds else 0.0,
        backlog_growth_per_second=growth,
        schedule_slip_ms=schedule_slip_s * 1000,
        sustainable=finished == accepted
        and accepted > 0
        and growth < 0.02 * offered_rate
        and schedule_slip_s < MAX_SCHEDULE_SLIP_S,
    )


@dataclass(frozen=True)
class Percentiles:
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def percentiles_ms(values_s: Sequence[float]) -> Percentiles:
    """p50/p95/p99/max in ms of durations in seconds (NaN for none)."""
    ordered = sorted(values_s)
    return Percentiles(
        n=len(ordered),
        p50_ms=percentile(ordered, 0.50) * 1000,
        p95_ms=percentile(ordered, 0.95) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] * 1000) if ordered else math.nan,
    )


@dataclass(frozen=True)
class Arrival:
    """One webhook request as the bench's receiver got it."""

    received_at: float  # the receiver's wall clock (time.time()), s
    event_id: str
    type: str
    sequence: int
    order_id: str
    occurred_at: float  # the database's clock_timestamp() when the change was written, s
    attempt: int  # the Saga-Delivery-Attempt header (1 for a first attempt)


# The event that ends each kind of saga: delivered, refunded (stock-out or cancel), payment declined.
TERMINAL_EVENT_TYPES = frozenset({"order.completed", "order.refunded", "order.rejected"})
FIRST_EVENT_TYPE = "order.placed"


@dataclass(frozen=True)
class WebhookFigures:
    expected: int  # the events the platform recorded for the step's orders
    received: int  # distinct events (by id) the receiver got
    missing: int  # expected but not received when the bench stopped waiting
    duplicates: int  # requests for an event received before
    retried: int  # requests that were not an event's first attempt
    out_of_order: int  # events received after a later event of the same order
    latency: Percentiles  # every event
    placed: Percentiles  # order.placed: the first event of a saga
    terminal: Percentiles  # the events that end a saga


def webhook_figures(arrivals: Sequence[Arrival], expected: int) -> WebhookFigures:
    """A step's webhook figures. An event's latency is from `occurred_at` (the status change was written,
    just before its transaction committed) to the receiver having the whole request, on its first
    receipt: a duplicate says nothing about how soon the shop knew. "Out of order" breaks the promise
    "event n + 1 of an order is not sent before n was acknowledged": among an order's first receipts,
    in the order they arrived, one whose sequence is below a sequence that arrived before it.
    """
    first: dict[str, Arrival] = {}
    for arrival in sorted(arrivals, key=lambda a: a.received_at):
        first.setdefault(arrival.event_id, arrival)
    highest: dict[str, int] = {}
    out_of_order = 0
    for arrival in first.values():  # in the order they arrived (dicts keep insertion order)
        if arrival.sequence < highest.get(arrival.order_id, 0):
            out_of_order += 1
        highest[arrival.order_id] = max(highest.get(arrival.order_id, 0), arrival.sequence)

    def latencies(keep: Callable[[Arrival], bool]) -> Percentiles:
        return percentiles_ms([a.received_at - a.occurred_at for a in first.values() if keep(a)])

    return WebhookFigures(
        expected=expected,
        received=len(first),
        missing=max(expected - len(first), 0),
        duplicates=len(arrivals) - len(first),
        retried=sum(1 for a in arrivals if a.attempt > 1),
        out_of_order=out_of_order,
        latency=latencies(lambda a: True),
        placed=latencies(lambda a: a.type == FIRST_EVENT_TYPE),
        terminal=latencies(lambda a: a.type in TERMINAL_EVENT_TYPES),
    )
