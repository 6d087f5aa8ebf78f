"""A disk that fills: the broker's log directory runs out of space under load (a long fault,
`pytest -m long_fault`).

The single broker's log directory (`log.dirs`, which also holds the KRaft metadata log) is put on a small
filesystem of its own, a tmpfs the test mounts: it needs the right to mount (root, as CI runs), else the
module is skipped and says why. The fault fills it to the last byte with a file, holds it full, deletes
the file as an operator freeing space would, and restarts the broker if it stopped: a broker whose only
log directory fails halts (KIP-112), and nothing brings it back by itself.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from common.config import Service
from tests.chaos.disks import fill, mount_refused, small_disk
from tests.chaos.harness import ChaosStack, ShopLoad, chaos_stack, settle
from tests.chaos.measure import database_offset, finish_times, metrics, spread

DISK_MB = 256
FULL_SECONDS = 12
SAGAS = int(os.environ.get("CHAOS_SAGAS", "300"))
OUTBOX = ("saga_outbox_pending", "saga_outbox_oldest_pending_seconds")

REFUSED = mount_refused()
pytestmark = [pytest.mark.long_fault, pytest.mark.skipif(REFUSED is not None, reason=REFUSED or "")]


def _broker_running(chaos: ChaosStack) -> bool:
    kafka = chaos.stack.kafka
    assert kafka is not None
    process = kafka._processes.get(0)
    return process is not None and process.poll() is None


def _all_ready(chaos: ChaosStack) -> bool:
    return all(chaos.readiness(service)[0] == 200 for service in Service)


def test_the_brokers_log_directory_full_holds_events_in_the_outboxes_and_loses_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "stack" / "kafka" / "node-1" / "data"  # the node's log.dirs (local_kafka.py)
    with small_disk(data, DISK_MB) as disk, chaos_stack(tmp_path) as chaos:
        kafka = chaos.stack.kafka
        assert kafka is not None and (disk / "meta.properties").exists(), "Kafka's log dir is elsewhere"
        load = ShopLoad(chaos, sagas=SAGAS)
        load.start()
        time.sleep(3)
        filled = time.monotonic()
        filler = fill(disk)
        halted_after: float | None = None
        readiness: Counter[tuple[str, int, str]] = Counter()  # what /readyz said, sampled
        reasons: set[str] = set()  # why, as an operator reads it
        named_the_disk: set[str] = set()  # services whose /readyz named the broker's full disk
        outbox: list[dict[str, float]] = []  # payment's outbox metrics, once a second
        while time.monotonic() < filled + FULL_SECONDS:
            if halted_after is None and not _broker_running(chaos):
                halted_after = time.monotonic() - filled
            for service in Service:
                status, checks = chaos.readiness(service)
                readiness[(service.value, status, checks["broker"].split(":", 1)[0])] += 1
                if status == 503:
                    reasons.add(checks["broker"][:100])
                    if "KafkaStorageError" in checks["broker"]:
                        named_the_disk.add(service.value)
            outbox.append(metrics(chaos, Service.PAYMENT, *OUTBOX))
            time.sleep(1)
        filler.unlink()
        halted = not _broker_running(chaos)
        kafka.restart(0)  # returns once it accepts connections again
        repaired = time.monotonic()
        repaired_on_database = repaired + database_offset(chaos)
        while not _all_ready(chaos) and time.monotonic() < repaired + 60:
            time.sleep(0.2)
        ready_after = time.monotonic() - repaired
        during = load.checkouts_between(filled, repaired)
        result = settle(chaos, load, "broker-disk-full", 1)

        finished = finish_times(chaos)
        caught = [s for s in load.accepted if s.accepted_at < repaired]
        recovery = spread(
            finished[s.order_id] - repaired_on_database
            for s in caught
            if finished[s.order_id] > repaired_on_database
        )
        broker_checks = sorted(readiness.items())
        print(
            f"FAULT broker-disk-full: {result.sagas} sagas, lost {result.lost}, doubled {result.doubled},"
            f" broken rules {len(result.report.violations)}; broker halted {halted}"
            f" ({None if halted_after is None else round(halted_after, 1)} s after the disk filled);"
            f" checkout while broken {dict(during)}; every answer {dict(load.statuses)}; hung {load.hung};"
            f" 503 without Retry-After {load.unavailable_without_retry_after}; /readyz (service, status,"
            f" broker check) samples: {broker_checks}, saying {sorted(reasons)[:2]}; naming the full disk:"
            f" {sorted(named_the_disk)}; payment's outbox"
            f" (pending, oldest s) at the end of the fault: {outbox[-1]}; every /readyz 200"
            f" {ready_after:.1f} s after the restart;"
            f" sagas caught by it finished after the repair: {recovery}; quiet"
            f" {result.recovery_seconds:.1f} s after the load"
        )
        assert halted, "the broker kept running with its only log directory failed"
        assert load.statuses[500] == 0 and load.unavailable_without_retry_after == 0 and load.hung == 0
        # The checkout writes the outbox, not Kafka: it answered throughout, and the events waited there.
        assert set(during) == {202}, during
        assert max(sample["saga_outbox_pending"] for sample in outbox) > 0, outbox
        # Every service's /readyz named the broker while it was down.
        for service in Service:
            assert readiness[(service.value, 503, "failed")] > 0, broker_checks
        # ...and the cause where it could know it: a service whose publish the broker refused with
        # KAFKA_STORAGE_ERROR before it halted. Which one that is is a race: the broker halts within a
        # second of its first failed append, and only the producers whose requests came in that second
        # are refused (2026-12-07: delivery alone, payment's publishes then found the broker gone).
        assert named_the_disk, sorted(reasons)
        assert result.lost == 0 and result.doubled == 0
