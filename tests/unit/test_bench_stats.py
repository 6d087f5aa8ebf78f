"""The benchmark's arithmetic: percentiles, backlog growth and what counts as sustainable."""

from __future__ import annotations

import math

import pytest

from bench.loadgen import Tracker
from bench.report import max_sustainable
from bench.stats import percentile, slope, summarise


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, 5),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95, 10),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.10, 1),
        ([7], 0.99, 7),
    ],
)
def test_percentiles_are_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


def test_no_values_have_no_percentile() -> None:
    assert math.isnan(percentile([], 0.5))


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0, 0), (1, 2), (2, 4)], 2.0),
        ([(0, 5), (1, 5), (2, 5)], 0.0),
        ([(3, 1)], 0.0),
        ([(1, 1), (1, 9)], 0.0),
    ],
)
def test_slope_is_least_squares(points: list[tuple[float, float]], expected: float) -> None:
    assert slope(points) == pytest.approx(expected)


def test_a_flat_backlog_with_every_saga_finished_is_sustainable() -> None:
    backlog = [(t, 10.0) for t in range(60)]
    figures = summarise(100, 60, [0.05] * 6000, 6000, backlog, finished_in_window=5990)
    assert figures.sustainable
    assert figures.completed_per_second == pytest.approx(5990 / 60)
    assert figures.p99_ms == pytest.approx(50)


@pytest.mark.parametrize(
    ("backlog_slope", "finished", "sustainable"),
    [(0.0, 6000, True), (1.0, 6000, True), (3.0, 6000, False), (0.0, 5999, False)],
)
def test_a_growing_backlog_or_an_unfinished_saga_is_not_sustainable(
    backlog_slope: float, finished: int, sustainable: bool
) -> None:
    backlog = [(float(t), 10 + backlog_slope * t) for t in range(60)]
    figures = summarise(100, 60, [0.1] * finished, 6000, backlog, finished_in_window=finished)
    assert figures.sustainable is sustainable


@pytest.mark.parametrize(
    ("slip_seconds", "sustainable"),
    [(0.0, True), (0.5, True), (1.0, False), (12.0, False)],
)
def test_a_generator_that_fell_behind_its_schedule_did_not_offer_the_rate(
    slip_seconds: float, sustainable: bool
) -> None:
    backlog = [(float(t), 10.0) for t in range(60)]
    figures = summarise(
        100, 60, [0.1] * 6000, 6000, backlog, finished_in_window=6000, schedule_slip_s=slip_seconds
    )
    assert figures.sustainable is sustainable
    assert figures.schedule_slip_ms == pytest.approx(slip_seconds * 1000)


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ({5: True, 10: True, 15: False, 20: True}, 10),  # a pass above a failure does not count
        ({5: False, 10: True}, None),
        ({10: True, 5: True}, 10),  # in rate order, whatever the order of the runs
        ({}, None),
    ],
)
def test_the_max_sustainable_rate_ends_at_the_first_rate_that_failed(
    verdicts: dict[float, bool], expected: float | None
) -> None:
    steps = [{"offered_rate": rate, "sustainable": ok} for rate, ok in verdicts.items()]
    assert max_sustainable(steps) == expected


def test_checkouts_waiting_for_their_answer_count_in_the_backlog_until_answered() -> None:
    tracker = Tracker()
    tracker.accept("o-1")
    with tracker.awaiting_answer(), tracker.awaiting_answer():
        assert tracker.in_flight() == 3  # o-1 has no terminal event; two checkouts are unanswered
    tracker.end("o-1", "COMPLETED", at=0.0)
    assert tracker.in_flight() == 0


def test_a_checkout_that_fails_leaves_the_backlog() -> None:
    tracker = Tracker()
    with pytest.raises(ConnectionError), tracker.awaiting_answer():
        raise ConnectionError("refused")
    assert tracker.in_flight() == 0
