"""A disk that fills: a small filesystem of its own for a server's data (a tmpfs the test mounts), filled
to the last byte with one file, then freed as an operator would, by deleting that file.

Mounting needs the right to mount (root, as CI runs); `mount_refused` says why a machine cannot, for the
tests to skip with that reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def mount_refused() -> str | None:
    """Why this machine cannot mount a tmpfs for a test, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a small filesystem for the data directory needs root"
    probe = Path(f"/tmp/saga-disk-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True
        )
        if mounted.returncode != 0:
            return f"mount refused: {mounted.stderr.decode().strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


@contextlib.contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[Path]:
    """`path` as the mount point of a filesystem of `megabytes`, for the time of the block."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Fill `disk` to its last byte with one file, and return it."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with contextlib.suppress(OSError), filler.open("ab") as out:  # the last partial megabyte
        while True:
            out.write(b"\0" * 4096)
            out.flush()
    return filler
