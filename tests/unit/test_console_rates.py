"""The overview's throughput (`console/rates.py`): a counter's growth per second over its last minute of
readings, from the console's own readings of the services' counters."""

from __future__ import annotations

from console.rates import Rates


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_rate_is_unknown_until_two_readings_a_second_apart() -> None:
    clock = Clock()
    rates = Rates(clock=clock)
    assert rates.per_second("applied", 10) is None
    clock.now = 0.5
    assert rates.per_second("applied", 12) is None
    clock.now = 2.0
    assert rates.per_second("applied", 30) == 10.0


def test_a_rate_spans_the_last_window_of_readings_and_forgets_older_ones() -> None:
    clock = Clock()
    rates = Rates(window=60.0, clock=clock)
    for second in range(0, 121, 3):  # 1 per second for two minutes, then 5 per second
        clock.now = float(second)
        rates.per_second("applied", second)
    for second in range(123, 190, 3):
        clock.now = float(second)
        rate = rates.per_second("applied", 120 + (second - 120) * 5)
    assert rate is not None and abs(rate - 5.0) < 0.3  # the slow minute has left the window


def test_a_counter_that_went_down_was_reset_and_its_rate_starts_again() -> None:
    clock = Clock()
    rates = Rates(clock=clock)
    rates.per_second("applied", 500)
    clock.now = 3.0
    assert rates.per_second("applied", 530) == 10.0
    clock.now = 6.0
    assert rates.per_second("applied", 4) is None  # the service restarted: no negative throughput
    clock.now = 9.0
    assert rates.per_second("applied", 34) == 10.0


def test_each_counter_has_its_own_rate() -> None:
    clock = Clock()
    rates = Rates(clock=clock)
    rates.per_second("payment:applied", 0)
    rates.per_second("order:applied", 0)
    clock.now = 10.0
    assert rates.per_second("payment:applied", 100) == 10.0
    assert rates.per_second("order:applied", 20) == 2.0
