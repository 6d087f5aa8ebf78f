from __future__ import annotations

from datetime import UTC, datetime

from common.database_clock import DatabaseClock


class Clocks:
    def __init__(self) -> None:
        self.monotonic = 100.0
        self.wall = 1_700_000_000.0


def test_the_database_clock_follows_the_database_reading_not_the_hosts_wall_clock() -> None:
    clocks = Clocks()
    clock = DatabaseClock(monotonic=lambda: clocks.monotonic, wall=lambda: clocks.wall)
    clock.read(1_700_000_000.0)
    clocks.wall += 3600  # the host's clock jumps an hour ahead
    clocks.monotonic += 2.5
    assert clock.epoch() == 1_700_000_002.5
    assert clock.now() == datetime.fromtimestamp(1_700_000_002.5, UTC)


def test_a_new_reading_replaces_the_last_one() -> None:
    clocks = Clocks()
    clock = DatabaseClock(monotonic=lambda: clocks.monotonic, wall=lambda: clocks.wall)
    clock.read(1_700_000_000.0)
    clocks.monotonic += 10
    clock.read(1_700_000_009.0)  # the database's clock was slewed back a second meanwhile
    assert clock.epoch() == 1_700_000_009.0


def test_before_any_reading_it_is_the_hosts_wall_clock() -> None:
    clocks = Clocks()
    clock = DatabaseClock(monotonic=lambda: clocks.monotonic, wall=lambda: clocks.wall)
    assert clock.epoch() == clocks.wall
