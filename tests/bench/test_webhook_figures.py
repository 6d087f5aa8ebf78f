"""The bench's webhook figures and its on/off comparison, on made-up arrivals (pure: no stack)."""

from __future__ import annotations

import math
from typing import Any

from bench.report import compare_webhooks, tables
from bench.stats import Arrival, webhook_figures


def arrival(
    event: str, order: str, sequence: int, kind: str, occurred: float, received: float, attempt: int = 1
) -> Arrival:
    return Arrival(
        received_at=received,
        event_id=event,
        type=kind,
        sequence=sequence,
        order_id=order,
        occurred_at=occurred,
        attempt=attempt,
    )


def test_latency_is_taken_on_each_events_first_receipt_and_duplicates_are_counted_apart() -> None:
    arrivals = [
        arrival("a1", "o-a", 1, "order.placed", 10.000, 10.010),
        arrival("a2", "o-a", 2, "order.completed", 10.100, 10.130),
        arrival("a2", "o-a", 2, "order.completed", 10.100, 12.000, attempt=2),  # a retry: a duplicate
        arrival("b1", "o-b", 1, "order.rejected", 11.000, 11.050),
    ]
    figures = webhook_figures(arrivals, expected=4)
    assert (figures.received, figures.missing, figures.duplicates, figures.retried) == (3, 1, 1, 1)
    assert figures.latency.n == 3 and math.isclose(figures.latency.max_ms, 50, abs_tol=1e-6)
    assert figures.placed.n == 1 and math.isclose(figures.placed.p50_ms, 10, abs_tol=1e-6)
    # The events that end a saga: order.completed and order.rejected here.
    assert figures.terminal.n == 2 and math.isclose(figures.terminal.max_ms, 50, abs_tol=1e-6)
    assert figures.out_of_order == 0


def test_an_event_received_after_a_later_one_of_its_order_is_out_of_order() -> None:
    arrivals = [
        arrival("a2", "o-a", 2, "order.scheduled", 1.0, 1.1),
        arrival("a1", "o-a", 1, "order.placed", 0.9, 1.2),
        arrival("b1", "o-b", 1, "order.placed", 0.5, 1.3),  # another order's: no constraint
    ]
    assert webhook_figures(arrivals, expected=3).out_of_order == 1


def test_no_arrivals_give_no_latency() -> None:
    figures = webhook_figures([], expected=2)
    assert figures.missing == 2 and figures.latency.n == 0 and math.isnan(figures.latency.p50_ms)


def step(rate: float, completed: float, order_ms: float, *, webhooks: bool) -> dict[str, Any]:
    cpu = {"payment": 10.0, "order": order_ms, "delivery": 10.0, "kafka": 5.0, "postgres": 5.0}
    if webhooks:
        cpu["receiver"] = 0.5
    return {
        "offered_rate": rate,
        "seconds": 60,
        "accepted": int(rate * 60),
        "finished": int(rate * 60),
        "p50_ms": 100.0,
        "p95_ms": 150.0,
        "p99_ms": 200.0,
        "max_ms": 250.0,
        "completed_per_second": completed,
        "backlog_growth_per_second": 0.0,
        "schedule_slip_ms": 5.0,
        "sustainable": completed >= rate * 0.99,
        "cpu_ms_per_saga": {**cpu, "generator": 5.0},
    }


def test_the_comparison_gives_the_change_at_each_common_rate_and_judges_throughput_at_the_top_one() -> None:
    off = [step(10, 10.0, 10.0, webhooks=False), step(80, 50.0, 8.0, webhooks=False)]
    on = [step(10, 10.0, 12.0, webhooks=True), step(80, 46.0, 9.0, webhooks=True)]
    comparison = compare_webhooks(off, on)
    low, high = comparison["rates"]
    # The platform's processes only: 40 ms off, 42 ms on at 10/s (the receiver is the shop's).
    assert low["platform_cpu_ms_per_saga"] == {"off": 40.0, "on": 42.0, "change_pct": 5.0}
    assert low["receiver_cpu_ms_per_saga"] == 0.5
    assert comparison["throughput_at_top_rate"] == {
        "offered_rate": 80,
        "off": 50.0,
        "on": 46.0,
        "change_pct": -8.0,
        "past_ceiling": True,  # what a throughput comparison needs: a rate the platform cannot sustain
        "generator_late_ms": {"off": 5.0, "on": 5.0},
    }
    assert high["sustainable"] == {"off": False, "on": False}
    assert comparison["max_sustainable"] == {"off": 10, "on": 10}
    report = tables(
        {
            "machine": {},
            "seconds": 60,
            "steps": {"platform": off, "platform+webhooks": on},
            "webhook_comparison": comparison,
        }
    )
    assert "| 80 | 50.0 / 46.0 (-8.0 %) |" in report
    assert "(-8.0 %; within 10 %: yes)" in report
