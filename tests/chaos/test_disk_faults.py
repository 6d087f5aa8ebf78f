"""A disk that fills: PostgreSQL's data directory runs out of space under load, for 10 s.

The data directory is put on a small filesystem of its own (a tmpfs the test mounts, so it needs the
right to mount: root, as CI runs; elsewhere the module is skipped and says why). The fault fills it to
the last byte with a file, holds it full, then deletes the file, as an operator freeing space would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from common.config import Service
from tests.chaos.disks import fill, mount_refused, small_disk
from tests.chaos.harness import ShopLoad, chaos_stack, settle

DISK_MB = 512


REFUSED = mount_refused()
if REFUSED is not None:
    print(f"\ntests/chaos/test_disk_faults.py skipped: {REFUSED}")
pytestmark = pytest.mark.skipif(REFUSED is not None, reason=REFUSED or "")


def test_postgres_out_of_disk_for_ten_seconds_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "stack" / "postgres", DISK_MB) as disk, chaos_stack(tmp_path) as chaos:
        load = ShopLoad(chaos)
        load.start()
        postgres = chaos.stack.postgres
        assert postgres is not None
        time.sleep(3)
        filled = time.monotonic()
        filler = fill(disk)
        readiness: list[tuple[str, int, str]] = []  # what an operator's /readyz said, once a second
        while time.monotonic() < filled + 10:
            for service in Service:
                status, checks = chaos.readiness(service)
                readiness.append((service.value, status, checks["database"]))
            time.sleep(1)
        freed = time.monotonic()
        filler.unlink()
        crashed = postgres._process is not None and postgres._process.poll() is not None
        if crashed:
            postgres.restart()
        load.wait()
        during = load.checkouts_between(filled, freed)
        back = load.first_checkout_accepted_after(freed)
        result = settle(chaos, load, "postgres-disk-full", 1)
        named = sorted({(service, database) for service, status, database in readiness if status == 503})
        print(
            f"FAULT postgres-disk-full: checkout while full {dict(during)}; postgres exited: {crashed};"
            f" a checkout accepted {None if back is None else round(back - freed, 2)} s after space was"
            f" freed; every answer {dict(load.statuses)}; hung {load.hung}; /readyz while full named"
            f" {len(named)} cause(s): {named[:3]}"
        )
        assert load.statuses[500] == 0 and load.unavailable_without_retry_after == 0 and load.hung == 0
        assert back is not None
        assert result.lost == 0
        # While writes failed, readiness said why (a read alone would have said "ok").
        assert any("writes fail" in database and "space" in database for _, database in named), readiness
