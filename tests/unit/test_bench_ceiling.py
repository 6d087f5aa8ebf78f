"""The bench's ceiling search: which rate it tries next, when it stops, and what it calls the ceiling."""

from __future__ import annotations

from typing import Any

import pytest

from bench.ceiling import (
    Done,
    Ladder,
    Probe,
    Resolution,
    Verdict,
    bounds,
    next_step,
    parse_resolution,
    search,
)
from bench.report import max_sustainable, tables


def verdicts(*pairs: tuple[float, bool]) -> list[Verdict]:
    return [Verdict(rate, ok) for rate, ok in pairs]


LADDER = Ladder(start=10, factor=2, resolution=Resolution(absolute=5), probes=20)


def test_with_nothing_measured_the_search_starts_at_its_start_rate() -> None:
    assert next_step([], LADDER, spent=0) == Probe(10)


def test_while_every_rate_passes_the_search_steps_up_by_its_factor_from_the_highest_pass() -> None:
    history = verdicts((5, True), (10, True), (50, True), (20, True))
    assert next_step(history, LADDER, spent=0) == Probe(100)


def test_a_fixed_ladder_that_passed_everywhere_is_where_the_search_goes_on_from() -> None:
    history = verdicts((25, True), (50, True), (85, True), (160, True))
    assert next_step(history, Ladder(factor=1.5, probes=8), spent=0) == Probe(240)


def test_between_a_pass_and_a_failure_the_search_tries_the_middle() -> None:
    history = verdicts((80, True), (160, False))
    assert next_step(history, LADDER, spent=0) == Probe(120)


def test_a_pass_above_a_failure_does_not_count_as_the_bound() -> None:
    history = verdicts((40, True), (45, False), (50, True))
    assert bounds(history).passed == 40 and bounds(history).failed == 45
    assert next_step(history, Ladder(resolution=Resolution(absolute=1)), spent=0) == Probe(42)


def test_the_search_stops_once_pass_and_failure_are_within_the_resolution() -> None:
    history = verdicts((100, True), (104, False))
    step = next_step(history, LADDER, spent=0)
    assert isinstance(step, Done) and "within 5 sagas/s" in step.why


@pytest.mark.parametrize(
    ("passed", "failed", "stops"),
    [(100, 105, True), (100, 106, False), (200, 210, True), (200, 211, False)],
)
def test_a_relative_resolution_is_a_fraction_of_the_highest_pass(
    passed: float, failed: float, stops: bool
) -> None:
    ladder = Ladder(resolution=Resolution(relative=0.05))
    step = next_step(verdicts((passed, True), (failed, False)), ladder, spent=0)
    assert isinstance(step, Done) is stops


def test_when_even_the_first_rate_fails_the_search_steps_down() -> None:
    assert next_step(verdicts((40, False)), LADDER, spent=0) == Probe(20)
    assert next_step(verdicts((40, False), (20, False)), LADDER, spent=0) == Probe(10)


def test_a_search_that_steps_below_its_lowest_rate_finds_nothing_sustainable() -> None:
    step = next_step(verdicts((1.5, False)), Ladder(lowest=1), spent=0)
    assert isinstance(step, Done) and "nothing sustainable" in step.why


def test_the_search_stops_when_its_probes_are_spent() -> None:
    step = next_step(verdicts((80, True), (160, False)), Ladder(probes=3), spent=3)
    assert isinstance(step, Done) and "probes are spent" in step.why


def test_bounds_within_the_resolution_are_final_even_when_the_probes_are_spent() -> None:
    step = next_step(verdicts((118, True), (122, True), (125, False)), Ladder(probes=6), spent=6)
    assert isinstance(step, Done) and "within 5 %" in step.why


def test_the_search_never_goes_above_its_highest_rate() -> None:
    ladder = Ladder(highest=300)
    assert next_step(verdicts((200, True)), ladder, spent=0) == Probe(300)
    step = next_step(verdicts((300, True)), ladder, spent=1)
    assert isinstance(step, Done) and "300/s passed" in step.why


def test_rates_below_ten_are_tried_to_a_tenth_and_above_as_whole_sagas() -> None:
    assert next_step(verdicts((3, True), (4, False)), Ladder(), spent=0) == Probe(3.5)
    assert next_step(verdicts((100, True), (125, False)), LADDER, spent=0) == Probe(112)


@pytest.mark.parametrize("true_ceiling", [7.3, 42.0, 97.0, 130.0, 251.0])
def test_against_a_chain_with_a_sharp_ceiling_the_search_ends_within_its_resolution_below_it(
    true_ceiling: float,
) -> None:
    measured: list[float] = []

    def measure(rate: float) -> bool:
        measured.append(rate)
        return rate <= true_ceiling

    found = search(measure, [], Ladder(start=10, resolution=Resolution(relative=0.05), probes=20))
    assert found.max_sustainable is not None and found.lowest_failure is not None
    assert found.max_sustainable <= true_ceiling < found.lowest_failure
    assert found.lowest_failure - found.max_sustainable <= max(0.05 * found.max_sustainable, 1)
    assert len(set(measured)) == len(measured)  # no rate measured twice
    assert [probe.rate for probe in found.probes] == measured


def test_the_search_calls_the_ceiling_what_the_report_calls_max_sustainable() -> None:
    # A noisy ladder: 40/s failed once although 50/s passed; the rule keeps the ceiling below 40.
    ladder = verdicts((10, True), (30, True), (40, False), (50, True))
    found = search(lambda rate: {35: True}[int(rate)], ladder, LADDER)
    steps = [{"offered_rate": v.rate, "sustainable": v.sustainable} for v in [*ladder, *found.probes]]
    assert found.max_sustainable == max_sustainable(steps) == 35
    assert found.lowest_failure == 40
    assert found.probes == [Verdict(35, True)]


def test_a_search_with_no_probes_reports_what_the_ladder_found() -> None:
    found = search(
        lambda rate: pytest.fail("no probe may run"), verdicts((5, True), (10, False)), Ladder(probes=0)
    )
    assert (found.max_sustainable, found.lowest_failure, found.probes) == (5, 10, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", Resolution(absolute=5)), ("2.5", Resolution(absolute=2.5)), ("5%", Resolution(relative=0.05))],
)
def test_a_resolution_is_sagas_per_second_or_a_percentage(text: str, expected: Resolution) -> None:
    assert parse_resolution(text) == expected


@pytest.mark.parametrize("text", ["", "0", "-5", "5 sagas", "%", "five%"])
def test_anything_else_is_not_a_resolution(text: str) -> None:
    with pytest.raises(ValueError, match="resolution"):
        parse_resolution(text)


def test_a_ladder_that_cannot_move_is_refused() -> None:
    with pytest.raises(ValueError, match="not a ladder"):
        Ladder(factor=1)


def step(rate: float, ok: bool) -> dict[str, Any]:
    """A measured step as results.json keeps it (the fields the report reads)."""
    return {
        "offered_rate": rate,
        "sustainable": ok,
        "completed_per_second": rate if ok else rate * 0.8,
        "finished": 100,
        "accepted": 100,
        "p50_ms": 50.0,
        "p95_ms": 80.0,
        "p99_ms": 90.0,
        "max_ms": 99.0,
        "backlog_growth_per_second": 0.0 if ok else 5.0,
        "schedule_slip_ms": 3.0,
        "cpu_ms_per_saga": {"kafka": 1.0},
    }


def searched(ceiling: float, failure: float, *probes: tuple[float, bool]) -> dict[str, Any]:
    return {
        "max_sustainable": ceiling,
        "lowest_failure": failure,
        "stopped": "within 5 %",
        "seeded_from": [{"rate": 10.0, "sustainable": True}],
        "ladder": {"start": 10.0, "factor": 2.0, "resolution": "5 %", "probes": 8},
        "probes": [{**step(rate, ok), "settle": {"waited_s": 2.0}} for rate, ok in probes],
    }


def test_the_report_states_each_ceiling_found_and_the_platforms_against_the_raw_chains() -> None:
    results = {
        "seconds": 60,
        "machine": {},
        "steps": {"platform": [step(10, True)], "raw": [step(10, True)]},
        "ceilings": {
            "platform": searched(95, 100, (20, True), (40, True), (80, True), (160, False), (120, False)),
            "raw": searched(250, 260, (20, True), (320, False), (240, True), (250, True), (260, False)),
        },
    }
    report = tables(results)
    assert "### platform (max sustainable on this ladder: 10 sagas/s; ceiling search: 95 sagas/s)" in report
    assert "Ceiling of `raw`: 250 sagas/s (lowest rate that failed: 260/s" in report
    assert "Platform / raw chain (ceilings found by the search): 95 / 250 = 0.38" in report
    assert "| 4 | 160 |" in report  # each probe, in the order it ran


def test_without_a_search_the_report_keeps_the_ladders_max_sustainable() -> None:
    results = {
        "seconds": 60,
        "machine": {},
        "steps": {"platform": [step(10, True), step(20, False)], "raw": [step(40, True)]},
    }
    report = tables(results)
    assert "### platform (max sustainable: 10 sagas/s)" in report
    assert "Platform / raw chain (max sustainable on the ladders): 10 / 40 = 0.25" in report
    assert "ceilings found by the search" not in report
