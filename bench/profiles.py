"""py-spy flame graphs of the services during a step, and the frames where their CPU goes.

`python -m bench --profile` samples every platform process (not Kafka, PostgreSQL or the generator) for
the whole arrival window of each step: `<ladder>-<rate>-<process>.svg` (a flame graph to open in a
browser) and `.txt` (the same stacks, collapsed, one line per stack). `top_frames` reads the collapsed
stacks for the report: the share of samples in each library and the functions with the most time of
their own. py-spy samples without stopping the process (`--nonblocking`), and only threads that run
(idle waits are not counted) — but the sampler takes CPU of its own on a two-core machine, so a
profiled step's latency is not a measurement: profile and measure in separate runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RATE_HZ = 50
# Where a frame's time is charged: the first of these its file path contains, else our own module.
LIBRARIES = (
    "faust",
    "mode",
    "aiokafka",
    "sqlalchemy",
    "psycopg",
    "asyncio",
    "selectors",
    "pydantic",
    "aiohttp",
    "prometheus_client",
    "json",
    "logging",
)
_FRAME_FILE = re.compile(r"\((?P<file>[^():]+):\d+\)$")


def py_spy() -> str | None:
    """The py-spy next to this interpreter (a dev dependency), if any."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


@contextmanager
def sampling(pids: Mapping[str, int], seconds: float, out: Path, label: str) -> Iterator[None]:
    """Sample each process in `pids` for `seconds` (the step's arrival window) while the body runs."""
    binary = py_spy()
    if binary is None:
        raise SystemExit("--profile needs py-spy (pip install -e '.[dev]')")
    out.mkdir(parents=True, exist_ok=True)
    samplers = [
        subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                str(RATE_HZ),
                "--nonblocking",
                "--format",
                fmt,
                "--output",
                str(out / f"{label}-{name}.{suffix}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
        for fmt, suffix in (("raw", "txt"), ("flamegraph", "svg"))
    ]
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.wait(timeout=seconds + 60)


def top_frames(collapsed: Path, count: int = 12) -> dict[str, Any]:
    """The samples of one process: total, share per library (by the frame running), and the functions
    with the most samples of their own and in total (a function counted once per stack)."""
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(samples)
        total += n
        own[frames[-1]] += n
        libraries[_library(frames[-1])] += n
        for frame in set(frames):
            within[frame] += n

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in counter.most_common(count)]

    return {
        "samples": total,
        "by_library_percent": share(libraries),
        "own_percent": share(own),
        "within_percent": share(within),
    }


def _library(frame: str) -> str:
    match = _FRAME_FILE.search(frame)
    path = match.group("file") if match else frame
    parts = re.split(r"[/\\]", path)
    for library in LIBRARIES:
        if library in parts or f"{library}.py" in parts:
            return library
    return "ours" if parts and parts[0] in ("common", "payment", "order", "delivery") else parts[-1]
