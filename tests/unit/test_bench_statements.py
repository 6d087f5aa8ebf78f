"""The bench's round-trip count: PostgreSQL's statement counters turned into figures per saga and service."""

from __future__ import annotations

from bench.report import tables
from bench.statements import heaviest, per_saga, total


def test_statements_and_transactions_are_counted_per_saga_for_each_services_database() -> None:
    rows = [
        ("order", "BEGIN", 30),
        ("order", "COMMIT", 30),
        ("order", "SELECT id FROM outbox WHERE published_at IS NULL", 15),
        ("payment", "begin ", 12),
        ("payment", "BEGIN ISOLATION LEVEL READ COMMITTED", 8),
        ("payment", "UPDATE payments SET status = $1", 10),
        ("postgres", "BEGIN", 99),  # not a service's database: left out
    ]

    counted = per_saga(rows, ["payment", "order", "delivery"], sagas=10)

    assert counted == {
        "payment": {"statements": 3.0, "transactions": 2.0},
        "order": {"statements": 7.5, "transactions": 3.0},
        "delivery": {"statements": 0.0, "transactions": 0.0},
    }
    assert total(counted) == {"statements": 10.5, "transactions": 5.0}


def test_a_step_without_a_finished_saga_counts_per_one_instead_of_dividing_by_zero() -> None:
    assert per_saga([("order", "BEGIN", 4)], ["order"], sagas=0) == {
        "order": {"statements": 4.0, "transactions": 4.0}
    }


def test_the_report_shows_the_round_trips_per_service_and_together() -> None:
    step = {
        "offered_rate": 10,
        "completed_per_second": 10,
        "finished": 100,
        "accepted": 100,
        "p50_ms": 40,
        "p95_ms": 60,
        "p99_ms": 80,
        "max_ms": 90,
        "backlog_growth_per_second": 0,
        "schedule_slip_ms": 1,
        "sustainable": True,
        "cpu_ms_per_saga": {"order": 20},
        "statements": {
            "payment": {"statements": 11.6, "transactions": 2.6},
            "order": {"statements": 21.4, "transactions": 3.0},
        },
    }

    report = tables({"seconds": 30, "machine": "test", "steps": {"platform": [step]}})

    assert "| offered/s | payment | order | all |" in report
    assert "| 10 | 11.6 / 2.6 | 21.4 / 3 | 33 / 5.6 |" in report


def test_the_most_frequent_statements_of_each_service_are_listed_per_saga_on_one_line() -> None:
    rows = [
        ("order", "BEGIN", 30),
        ("order", "SELECT id\n  FROM outbox WHERE published_at IS NULL", 15),
        ("order", "UPDATE orders SET status = $1", 45),
        ("payment", "BEGIN", 20),
        ("postgres", "BEGIN", 99),  # not a service's database: left out
    ]

    found = heaviest(rows, ["payment", "order", "delivery"], sagas=10, limit=2)

    assert found == {
        "payment": [(2.0, "BEGIN")],
        "order": [(4.5, "UPDATE orders SET status = $1"), (3.0, "BEGIN")],
        "delivery": [],
    }


def test_the_report_lists_the_heaviest_statements_at_the_lowest_rate_measured() -> None:
    def step(rate: int, calls: float) -> dict[str, object]:
        return {
            "offered_rate": rate,
            "completed_per_second": rate,
            "finished": 100,
            "accepted": 100,
            "p50_ms": 40,
            "p95_ms": 60,
            "p99_ms": 80,
            "max_ms": 90,
            "backlog_growth_per_second": 0,
            "schedule_slip_ms": 1,
            "sustainable": True,
            "cpu_ms_per_saga": {"order": 20},
            "heaviest_statements": {"order": [(calls, "SELECT a | b FROM orders")]},
        }

    report = tables(
        {"seconds": 30, "machine": "test", "steps": {"platform": [step(40, 2.5), step(10, 3.25)]}}
    )

    assert "at 10 sagas/s" in report
    assert "| order | 3.25 | `SELECT a / b FROM orders` |" in report
    assert "| order | 2.5 |" not in report
