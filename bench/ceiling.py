"""The ceiling search: which offered rate to try next, given the verdicts so far. Pure, but for `search`,
which runs the decisions against a measuring function it is given.

The rule. The ceiling is the highest offered rate that passed below every rate that failed (a pass above
a failure does not count: `bench.report.max_sustainable`, the same rule). While nothing has failed, the
search steps up geometrically from the highest pass (times `factor`); while nothing has passed, it steps
down from the lowest failure (divided by `factor`); once it holds a pass below a failure, it bisects
between the two until they are within the resolution. Rates already measured (a fixed ladder) count as
history, so the search starts where they leave off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """One measured step: the rate offered and whether it was sustainable (`bench.stats.summarise`)."""

    rate: float
    sustainable: bool


@dataclass(frozen=True)
class Resolution:
    """How close the highest pass and the lowest failure must be for the search to stop: within
    `absolute` sagas/s or within `relative` times the pass, whichever is wider."""

    absolute: float = 0.0
    relative: float = 0.0

    def reached(self, passed: float, failed: float) -> bool:
        return failed - passed <= max(self.absolute, self.relative * passed)

    def __str__(self) -> str:
        parts = [f"{self.absolute:g} sagas/s"] if self.absolute else []
        parts += [f"{self.relative * 100:g} %"] if self.relative else []
        return " or ".join(parts) or "exact"


_RESOLUTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_resolution(text: str) -> Resolution:
    """`5` is 5 sagas/s, `5%` is 5 % of the highest pass. Raises ValueError for anything else."""
    found = _RESOLUTION.match(text)
    if found is None or float(found.group(1)) <= 0:
        raise ValueError(f"resolution {text!r}: a positive number of sagas/s, or a percentage like 5%")
    value = float(found.group(1))
    return Resolution(relative=value / 100) if found.group(2) else Resolution(absolute=value)


@dataclass(frozen=True)
class Ladder:
    """How the search moves: where it starts with no history, its geometric step, when it stops."""

    start: float = 10.0  # the first rate when nothing has been measured yet
    factor: float = 2.0  # the step up while every rate passed, and down while every rate failed
    resolution: Resolution = Resolution(relative=0.05)
    probes: int = 8  # at most this many steps of its own (each a full measured step)
    lowest: float = 1.0  # nothing below this is tried: then nothing is sustainable
    highest: float = 5000.0  # nothing above this is tried: a guard, not a claim

    def __post_init__(self) -> None:
        if self.factor <= 1 or self.start <= 0 or self.probes < 0 or not 0 < self.lowest <= self.highest:
            raise ValueError(f"not a ladder: {self}")


@dataclass(frozen=True)
class Bounds:
    """What the history says: the ceiling so far (`passed`) and the lowest rate that failed."""

    passed: float | None  # the highest pass below every failure (None: no such pass)
    failed: float | None  # the lowest failure (None: nothing failed)


def bounds(history: Sequence[Verdict]) -> Bounds:
    """The lowest failure, and the highest pass below it: passes above a failure do not count."""
    failed = min((v.rate for v in history if not v.sustainable), default=None)
    passes = [v.rate for v in history if v.sustainable and (failed is None or v.rate < failed)]
    return Bounds(passed=max(passes, default=None), failed=failed)


@dataclass(frozen=True)
class Probe:
    """Measure this rate next."""

    rate: float


@dataclass(frozen=True)
class Done:
    """Stop: the bounds are final, for the reason given."""

    why: str


def nice(rate: float) -> float:
    """A rate a reader can repeat: whole sagas/s from 10/s up, tenths below."""
    return float(round(rate)) if rate >= 10 else round(rate, 1)


def next_step(history: Sequence[Verdict], ladder: Ladder, spent: int) -> Probe | Done:
    """The search's next move, given every verdict so far and how many probes it has run itself.

    Up by `factor` from the highest pass while nothing failed; down by `factor` from the lowest failure
    while nothing passed below it; then the middle of the two, until they are within the resolution.
    A rate strictly between the bounds has never been measured, so no rate is measured twice. Bounds
    that are final say so even when the probes are spent, so the reason given is the real one.
    """
    step = _by_bounds(bounds(history), ladder)
    if isinstance(step, Probe) and spent >= ladder.probes:
        return Done(f"the search's {ladder.probes} probes are spent")
    return step


def _by_bounds(found: Bounds, ladder: Ladder) -> Probe | Done:
    """`next_step` with an unlimited number of probes."""
    if found.failed is None:
        if found.passed is None:
            return Probe(nice(min(max(ladder.start, ladder.lowest), ladder.highest)))
        if found.passed >= ladder.highest:
            return Done(f"{ladder.highest:g}/s passed: the highest rate the search tries")
        return Probe(nice(min(found.passed * ladder.factor, ladder.highest)))
    if found.passed is None:
        lower = nice(found.failed / ladder.factor)
        if lower < ladder.lowest:
            return Done(f"nothing sustainable down to {found.failed:g}/s")
        return Probe(lower)
    if ladder.resolution.reached(found.passed, found.failed):
        return Done(f"{found.passed:g}/s passed and {found.failed:g}/s failed: within {ladder.resolution}")
    middle = nice((found.passed + found.failed) / 2)
    if not found.passed < middle < found.failed:
        return Done(f"no rate to try between {found.passed:g}/s and {found.failed:g}/s")
    return Probe(middle)


@dataclass(frozen=True)
class Ceiling:
    """The search's outcome: the ceiling (None: nothing sustainable), why it stopped, its own probes."""

    max_sustainable: float | None
    lowest_failure: float | None
    why: str
    probes: list[Verdict]


def search(measure: Callable[[float], bool], seeded: Sequence[Verdict], ladder: Ladder) -> Ceiling:
    """Run `next_step` to its end: `measure(rate)` offers the rate for a step and says whether it was
    sustainable. `seeded` are verdicts measured before (a fixed ladder), counted as history."""
    history = list(seeded)
    probes: list[Verdict] = []
    while True:
        step = next_step(history, ladder, len(probes))
        if isinstance(step, Done):
            found = bounds(history)
            return Ceiling(found.passed, found.failed, step.why, probes)
        verdict = Verdict(step.rate, measure(step.rate))
        history.append(verdict)
        probes.append(verdict)
