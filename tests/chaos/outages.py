"""Outages the fault suite makes on purpose, and what they cost: what the checkout answered while each
lasted, and how long after each repair the sagas it held up began completing again.

Times are wall-clock seconds (`time.time()`): the databases stamp their rows with the same clock, and the
recovery is read from those stamps, not from the API under test.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

import psycopg

from common.config import Service
from tests.chaos.harness import ChaosStack, ShopLoad, sleep_while


@dataclass
class Outage:
    began: float
    ended: float = 0.0
    checkouts: Counter[int] = field(default_factory=Counter)  # answers that came while it lasted
    readiness: tuple[int, dict[str, str]] | None = None  # the cut service's /readyz, halfway through
    recovered_in: float | None = None  # from the repair to the first held-up saga COMPLETED


def cut_while_loading(
    load: ShopLoad,
    cut: Callable[[], None],
    repair: Callable[[], None],
    *,
    seconds: float,
    probe: Callable[[], tuple[int, dict[str, str]]] | None = None,
    gap: float = 12.0,
    first_after: float = 3.0,
) -> list[Outage]:
    """Cut for `seconds`, repair, wait `gap`; again while the load runs (at least once). The checkout
    answers counted for an outage are those that came from 1 s after the cut (an answer already on its
    way when it began may still arrive) to the repair."""
    outages: list[Outage] = []
    time.sleep(first_after)  # sagas in every step when it begins
    while load.running or not outages:
        outage = Outage(began=time.time())
        started = time.monotonic()
        cut()
        try:
            time.sleep(seconds / 2)
            if probe is not None:
                outage.readiness = probe()
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        finally:
            repair()
        outage.ended = time.time()
        outage.checkouts = load.checkouts_between(started + 1, time.monotonic())
        outages.append(outage)
        # Only while the load runs: once it is over no other cut comes, and the held-up sagas' catch-up
        # is waited for by `settle` (sleeping out the gap then cost CI's 10 s cut ~10 s for nothing).
        sleep_while(gap, lambda: load.running)
    return outages


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def saga_times(chaos: ChaosStack) -> dict[str, tuple[float, float | None]]:
    """Each saga's checkout (its payment's creation) and when its order became COMPLETED (None: never)."""
    with psycopg.connect(_plain(chaos.database_urls[Service.PAYMENT.value])) as conn:
        checkouts = conn.execute("SELECT order_id, extract(epoch FROM created_at) FROM payments").fetchall()
    with psycopg.connect(_plain(chaos.database_urls[Service.ORDER.value])) as conn:
        completed: dict[str, float | None] = dict(
            conn.execute(
                "SELECT order_id, min(extract(epoch FROM at)) FROM order_timeline "
                "WHERE status_after = 'COMPLETED' GROUP BY order_id"
            ).fetchall()
        )
    times: dict[str, tuple[float, float | None]] = {}
    for saga, at in checkouts:
        finished = completed.get(saga)
        times[saga] = (float(at), None if finished is None else float(finished))
    return times


def measure_recoveries(chaos: ChaosStack, outages: list[Outage]) -> None:
    """Each outage's recovery: from its repair to the first COMPLETED of a saga checked out after it
    began (each such saga waited on the cut one way or another). Fails if one completed during the cut:
    then the cut did not hold anything up."""
    times = saga_times(chaos)
    for outage in outages:
        done = sorted(
            finished for checkout, finished in times.values() if checkout >= outage.began and finished
        )
        early = [at for at in done if at < outage.ended]
        assert not early, f"{len(early)} saga(s) completed during the cut: it cut nothing"
        outage.recovered_in = done[0] - outage.ended if done else None


def completion_seconds(chaos: ChaosStack, since: float = 0.0, until: float = float("inf")) -> list[float]:
    """Checkout to COMPLETED of each saga checked out in [since, until), sorted."""
    return sorted(
        finished - checkout
        for checkout, finished in saga_times(chaos).values()
        if finished is not None and since <= checkout < until
    )


def p50_max(values: list[float]) -> str:
    return f"p50 {median(values):.1f} s, max {max(values):.1f} s" if values else "none"
