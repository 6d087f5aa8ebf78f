"""`python -m bench.idle`: what the platform costs when nothing happens, as the README starts it.

Issue 24's bound: an idle platform under 30 ms of CPU per second, the three services together. An idle
service still has timers: its outbox relay's sweep, the consumer's commits, heartbeats and metadata, the
workers' polls. Each wakes the event loop, and the wake-ups are the cost (`common/faust_consumer.py`).

This starts `saga run` as a user would (its own Kafka and PostgreSQL, a state folder of its own), waits
for its ready line, lets it settle (startup's one-off work: the collector's pass, the first metadata,
the consumer group's join), then reads each service's CPU time from the kernel over the window.
Kafka and PostgreSQL are not counted: the bound is the platform's own code. Nothing else should run on
the machine meanwhile, though a process's own CPU time moves little with its neighbours.

Writes `bench/results/idle/idle.json` and prints a table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import psutil
import typer
from rich.console import Console
from rich.table import Table

from bench.cpu import cpu_seconds
from common.services import SERVICES
from saga_tools.cli import READY_LINE

RESULTS = Path(__file__).parent / "results" / "idle"
BOUND_MS_PER_S = 30.0  # issue 24: the three services together, idle

app = typer.Typer(add_completion=False)


def service_pids(supervisor: int) -> dict[str, int]:
    """The services `saga run` started (`python -m <module>`), by module name, from its process tree."""
    modules = {spec.module for spec in SERVICES.values()}
    found: dict[str, int] = {}
    for child in psutil.Process(supervisor).children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "-m" in command[:-1]:
            module = command[command.index("-m") + 1]
            if module in modules:
                found[module] = child.pid
    return found


def per_second_ms(
    before: Mapping[str, float], after: Mapping[str, float], seconds: float
) -> dict[str, float]:
    """Each process's CPU over the window, in milliseconds per second, and the services' total."""
    figures = {name: round((after[name] - before[name]) / seconds * 1000, 1) for name in after}
    figures["services"] = round(sum(figures.values()), 1)
    return figures


@contextmanager
def saga_run(state_dir: Path, log: Path, ready_timeout: float) -> Iterator[int]:
    """`saga run` with its state in `state_dir`, until it says it is ready; stopped with SIGTERM, which it
    handles as Ctrl-C (a SIGINT would be ignored when this runs in the background: a shell starts
    background jobs with SIGINT ignored, and the child inherits that)."""
    saga = str(Path(sys.executable).with_name("saga"))
    env = {**os.environ, "SAGA_STATE_DIR": str(state_dir)}
    with log.open("wb") as output:
        process = subprocess.Popen([saga, "run"], env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ready_timeout
        while READY_LINE not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise RuntimeError(f"saga run exited with {process.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"saga run was not ready within {ready_timeout:.0f} s; see {log}")
            time.sleep(0.5)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@app.command()
def main(
    settle: Annotated[float, typer.Option(help="seconds left alone after ready, before measuring")] = 60,
    seconds: Annotated[float, typer.Option(help="the measured window")] = 60,
    out: Annotated[Path, typer.Option(help="where idle.json goes")] = RESULTS,
    ready_timeout: Annotated[float, typer.Option(help="how long `saga run` may take to be ready")] = 300,
) -> None:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="saga-idle-") as scratch:
        state_dir, log = Path(scratch) / "state", Path(scratch) / "saga-run.log"
        with saga_run(state_dir, log, ready_timeout) as supervisor:
            pids = service_pids(supervisor)
            missing = {spec.module for spec in SERVICES.values()} - set(pids)
            if missing:
                raise RuntimeError(f"saga run is ready but these services were not found: {sorted(missing)}")
            console.print(f"saga run is ready; left alone {settle:.0f} s, then measured {seconds:.0f} s")
            time.sleep(settle)
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            time.sleep(seconds)
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    figures = per_second_ms(before, after, seconds)
    result = {"settle_s": settle, "seconds": seconds, "ms_per_s": figures, "bound_ms_per_s": BOUND_MS_PER_S}
    out.mkdir(parents=True, exist_ok=True)
    (out / "idle.json").write_text(json.dumps(result, indent=2) + "\n")

    table = Table(title="An idle platform: CPU per second (ms)")
    table.add_column("process")
    table.add_column("ms/s", justify="right")
    for name, value in figures.items():
        table.add_row(name, f"{value:.1f}")
    console.print(table)
    verdict = "under" if figures["services"] < BOUND_MS_PER_S else "not under"
    console.print(
        f"services together: {figures['services']:.1f} ms/s, {verdict} the {BOUND_MS_PER_S:.0f} ms/s bound"
    )


if __name__ == "__main__":
    app()
