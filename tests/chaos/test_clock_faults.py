"""Time: one service's wall clock jumps an hour ahead under load, stays there for a while, then jumps back
(an NTP step, and its correction), a long fault (`pytest -m long_fault`).

The platform keeps time by PostgreSQL's clock: deadlines, retries, leases and housekeeping in SQL, and
what a service stamps itself (an event's `occurred_at`, a webhook's signature timestamp) by its copy of
the database's clock (common/database_clock.py), so a service's own clock may be wrong without anyone
noticing. A shop receiving the webhooks checks their signatures' timestamps against its own (right) clock
throughout; afterwards the orders rebuilt from the topics are the live ones. Needs libfaketime (Debian's
`faketime` package, which `make faults` installs when it can: `tools/ensure-faketime.sh`), else the
module is skipped and says why.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from common.config import Service
from saga_client.testing.webhooks import SagaWebhooks
from tests.chaos.clock import ServiceClock, libfaketime
from tests.chaos.harness import ShopLoad, chaos_stack, settle
from tests.chaos.measure import database_offset, finish_times, metrics, rebuild_differences, spread
from tests.keys import suite_headers

LIBRARY = libfaketime()
SAGAS = int(os.environ.get("CHAOS_SAGAS", "300"))
JUMP_SECONDS = 3600
AHEAD_FOR = 20.0
# Webhook attempts are given up after 2 s and retried within 3 s, so a backlog drains in the test's time.
WEBHOOK_ENV = {"WEBHOOK_TIMEOUT_SECONDS": "2", "WEBHOOK_RETRY_CAP_SECONDS": "3"}

pytestmark = [
    pytest.mark.long_fault,
    pytest.mark.skipif(LIBRARY is None, reason="libfaketime is not installed (apt-get install faketime)"),
]


@pytest.mark.parametrize("service", list(Service), ids=lambda service: service.value)
def test_a_services_clock_an_hour_ahead_then_back_loses_nothing_and_every_webhook_verifies(
    tmp_path: Path, service: Service
) -> None:
    assert LIBRARY is not None
    with chaos_stack(tmp_path, extra_env=WEBHOOK_ENV) as chaos, SagaWebhooks() as receiver:
        http = httpx.Client(timeout=15, headers=suite_headers())
        created = http.post(f"{chaos.url(Service.ORDER)}/webhooks", json={"url": receiver.url}).json()
        receiver.secrets.append(created["secret"])
        hook = f"{chaos.url(Service.ORDER)}/webhooks/{created['id']}"

        clock = ServiceClock(LIBRARY, tmp_path / "clock-offset")
        [worker] = chaos.workers[service]
        worker.stop()
        worker.env.update(clock.environment())
        chaos.revive(worker)  # the same service, now on a clock the test moves

        load = ShopLoad(chaos, sagas=SAGAS)
        load.start()
        time.sleep(5)
        jumped = time.monotonic()
        clock.set(JUMP_SECONDS)
        readiness: Counter[tuple[str, int]] = Counter()  # what /readyz said, sampled
        while time.monotonic() < jumped + AHEAD_FOR:
            for each in Service:
                readiness[(each.value, chaos.readiness(each)[0])] += 1
            time.sleep(1)
        back = time.monotonic()
        clock.set(0)
        offset = database_offset(chaos)
        during = load.checkouts_between(jumped, back)
        result = settle(chaos, load, f"clock-jump-{service.value}", 2)
        _wait_until_nothing_pending(http, hook)

        finished = finish_times(chaos)
        before = [s for s in load.accepted if s.accepted_at < jumped]
        ahead = [s for s in load.accepted if jumped <= s.accepted_at < back]
        after = [s for s in load.accepted if s.accepted_at >= back]
        durations_before = spread(finished[s.order_id] - (s.accepted_at + offset) for s in before)
        durations_ahead = spread(finished[s.order_id] - (s.accepted_at + offset) for s in ahead)
        durations_after = spread(finished[s.order_id] - (s.accepted_at + offset) for s in after)
        durations_metric = metrics(
            chaos, Service.ORDER, "saga_duration_seconds_sum", "saga_duration_seconds_count"
        )
        rebuilt = rebuild_differences(chaos)
        unverified = Counter(
            type(request.error).__name__ + ": " + str(request.error)[:60]
            for request in receiver.received()
            if request.error is not None
        )
        print(
            f"FAULT clock-jump-{service.value}: {result.sagas} sagas, lost {result.lost}, doubled"
            f" {result.doubled}, broken rules {len(result.report.violations)}; checkout while ahead"
            f" {dict(during)}; every answer {dict(load.statuses)}; hung {load.hung}; 503 without"
            f" Retry-After {load.unavailable_without_retry_after}; /readyz (service, status) samples"
            f" {sorted(readiness.items())}; checkout to final status, before the jump {durations_before},"
            f" while ahead {durations_ahead}, once back {durations_after}; saga_duration_seconds"
            f" {durations_metric};"
            f" webhook requests {len(receiver.received())}, not verified {sum(unverified.values())}:"
            f" {dict(unverified.most_common(3))}; orders rebuilt from the topics: {rebuilt.same} same,"
            f" {len(rebuilt.different)} different, {len(rebuilt.only_live)} missing,"
            f" {len(rebuilt.only_rebuilt)} extra; quiet {result.recovery_seconds:.1f} s after the load"
        )
        assert load.statuses[500] == 0 and load.unavailable_without_retry_after == 0 and load.hung == 0
        assert result.lost == 0 and result.doubled == 0
        assert set(during) == {202}, during  # the checkout does not read the service's clock
        # A shop checking the signatures' timestamps against its own clock accepts every request.
        receiver.assert_all_verified()
        # Events are stamped on the database's clock: a rebuild orders them as they happened...
        assert rebuilt.clean and rebuilt.same == len(load.accepted), rebuilt
        # ...and the sagas' durations are seconds, not the hour the clock jumped.
        count = durations_metric["saga_duration_seconds_count"]
        assert count == len(load.accepted)
        assert durations_metric["saga_duration_seconds_sum"] / count < 60, durations_metric
        http.close()


def _wait_until_nothing_pending(http: httpx.Client, hook: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while (pending := http.get(hook).json()["pending"]) != 0:
        assert time.monotonic() < deadline, f"{pending} webhook events still pending after {timeout:.0f}s"
        time.sleep(0.5)
