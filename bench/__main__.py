"""`python -m bench`: start the local stack, measure the platform and the raw chain, write the report data.

One command reproduces everything (`make bench`): a private Kafka and PostgreSQL under `.state/bench`,
the three services as processes (delivery's auto-progress on, so the happy path ships and delivers by
itself), a sweep of offered rates for the platform — without a webhook endpoint, then with one for the
bench's shop (`--webhooks`) — then the same for the raw chain, each ladder followed by a search for its
ceiling (`--ceiling`, `bench/ceiling.py`), then `bench/results/results.json`, `results.md` (tables) and
`latency.png` (percentiles against offered load).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform as host
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import psycopg
import typer
from rich.console import Console

from bench import hops, jit, profiles, statements
from bench.ceiling import Ladder, Verdict, parse_resolution, search
from bench.cpu import GENERATOR, RECEIVER, own_cpu_seconds, sample, used
from bench.loadgen import Driver, ShopClient, Tracker, run_step
from bench.raw_chain import RawDriver, prepare
from bench.report import compare_webhooks, write_report
from bench.stats import StepFigures
from bench.webhooks import STALLED_AFTER_S, StepEnd, Subscription, running_receiver, subscribe
from common.auth import Scope
from common.config import Service, Settings, load_settings
from common.service_apis import bearer
from saga_tools.local_stack.local_api_keys import DEMO_CALLERS
from saga_tools.local_stack.ports import free_port
from saga_tools.local_stack.postgres import find_binary
from saga_tools.local_stack.stack import LocalStack
from saga_tools.supervisor import running_services

console = Console()
app = typer.Typer(add_completion=False)
RESULTS = Path(__file__).resolve().parent / "results"
# The platform's two ladders in results.json: no webhook endpoint registered, and one for the bench's shop.
PLATFORM, PLATFORM_WEBHOOKS = "platform", "platform+webhooks"


class Webhooks(StrEnum):
    """Which platform ladders run: with no endpoint registered, with one, or both (off first)."""

    ON = "on"
    OFF = "off"
    BOTH = "both"


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _ladder(factor: float, resolution: str, probes: int) -> Ladder:
    """The ceiling search's ladder from the command line's options (a usage error if they make none)."""
    try:
        return Ladder(
            start=CEILING_START, factor=factor, resolution=parse_resolution(resolution), probes=probes
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


# Where a ceiling search starts when its chain's fixed ladder is empty (otherwise: from that ladder's
# verdicts, up by the factor from its highest pass, or between its highest pass and lowest failure).
CEILING_START = 10.0


@app.command()
def main(
    platform_rates: Annotated[
        str, typer.Option(help="offered sagas/s for the platform")
    ] = "5,10,20,30,35,40,45,50",
    raw_rates: Annotated[
        str, typer.Option(help="offered sagas/s for the raw chain")
    ] = "25,50,85,100,120,140,160",
    seconds: Annotated[float, typer.Option(help="arrival window of each step (>= 60 for the ceiling)")] = 60,
    drain: Annotated[float, typer.Option(help="seconds to wait for stragglers after a step")] = 60,
    out: Annotated[Path, typer.Option(help="where results go")] = RESULTS,
    quick: Annotated[bool, typer.Option("--quick", help="a few seconds at a low rate (CI)")] = False,
    only: Annotated[str | None, typer.Option(help="measure only `platform` or `raw`")] = None,
    warmup: Annotated[
        float,
        typer.Option(
            help="seconds at the first rate before measuring (caches, pools), then 10 s more at a time"
            " while the broker's JIT compiler is busy (up to 120 s more: bench/jit.py)"
        ),
    ] = 15,
    profile: Annotated[
        bool,
        typer.Option(
            "--profile",
            help="sample the services with py-spy during every step: flame graphs and top frames under"
            " <out>/profiles (latency figures of a profiled run are not measurements)",
        ),
    ] = False,
    webhooks: Annotated[
        Webhooks | None,
        typer.Option(
            help="the platform with a webhook endpoint for the bench's shop (on), without (off), or both"
            " ladders side by side (default: both; with --quick: on)"
        ),
    ] = None,
    ceiling: Annotated[
        bool | None,
        typer.Option(
            "--ceiling/--no-ceiling",
            help="after each ladder, search for its ceiling: up by --ceiling-factor from the ladder's"
            " highest pass until a step fails, then bisect (default: on; with --quick: off)",
        ),
    ] = None,
    ceiling_factor: Annotated[
        float, typer.Option(help="the search's step up while every rate passes (and down while all fail)")
    ] = 2.0,
    ceiling_resolution: Annotated[
        str,
        typer.Option(help="bisect until pass and failure are this close: sagas/s (5) or % of the pass (5%)"),
    ] = "5%",
    ceiling_probes: Annotated[int, typer.Option(help="at most this many steps per search")] = 8,
) -> None:
    """Measure the platform and the raw chain at each offered rate, then search each one's ceiling; write
    results, tables and the plot.

    By default the platform's ladder runs twice, without and then with a webhook endpoint, because the
    report's claim about webhooks is a comparison: their latency, and the saga's throughput with them
    against without. `--quick` (CI's smoke run) takes the endpoint's ladder only: it proves the path.
    """
    if quick:
        platform_rates, raw_rates, seconds, drain, warmup = "5", "5", 3, 60, 0
    mode = webhooks or (Webhooks.ON if quick else Webhooks.BOTH)
    searching = not quick if ceiling is None else ceiling
    ladder = _ladder(ceiling_factor, ceiling_resolution, ceiling_probes) if searching else None
    state = load_settings().state_dir.resolve() / "bench"
    shutil.rmtree(state, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(load_settings(), state_dir=state, postgres_settings=statements.SERVER_SETTINGS)
    results: dict[str, Any] = {"machine": machine(), "seconds": seconds, "steps": {}, "ceilings": {}}
    with console.status("starting Kafka and PostgreSQL…"):
        stack.start()
    try:
        if only in (None, "platform"):
            ladders, ceilings, endpoint = measure_platform(
                stack,
                state,
                _rates(platform_rates),
                Timing(seconds, drain, warmup, out / "profiles" if profile else None),
                mode,
                ladder,
            )
            results["steps"].update(ladders)
            results["ceilings"].update(ceilings)
            results["webhooks"] = {"mode": mode.value, "endpoint": endpoint}
            if PLATFORM in ladders and PLATFORM_WEBHOOKS in ladders:
                results["webhook_comparison"] = compare_webhooks(
                    ladders[PLATFORM], ladders[PLATFORM_WEBHOOKS]
                )
        if only in (None, "raw"):
            steps, found = measure_raw(
                stack, state, _rates(raw_rates), Timing(seconds, drain, warmup), ladder
            )
            results["steps"]["raw"] = steps
            if found is not None:
                results["ceilings"]["raw"] = found
    finally:
        stack.stop()
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_report(results, out)
    console.print(f"results in {out}")
    unfinished = [s for steps in results["steps"].values() for s in steps if s["finished"] < s["accepted"]]
    if quick and unfinished:
        raise typer.Exit(1)  # the smoke run proves the path works: every saga must finish
    unheard = [s for s in results["steps"].get(PLATFORM_WEBHOOKS, []) if not s["webhooks"]["received"]]
    if quick and unheard:
        raise typer.Exit(1)  # and, with an endpoint, the receiver must have heard of them


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    java = subprocess.run(
        ["java", "-version"], capture_output=True, text=True, check=False
    ).stderr.splitlines()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": sys.version.split()[0],
        "java": java[0] if java else "?",
        "kernel": host.release(),
        "kafka": load_settings().kafka_version,
        "postgres": subprocess.run(
            [find_binary("postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def infrastructure_pids(stack: LocalStack) -> dict[str, int]:
    pids: dict[str, int] = {}
    if stack.kafka is not None:
        pids["kafka"] = stack.kafka.pids[0]
    if stack.postgres is not None and stack.postgres.pid is not None:
        pids["postgres"] = stack.postgres.pid
    return pids


@dataclass(frozen=True)
class Timing:
    seconds: float  # arrival window of each measured step
    drain: float  # longest wait for stragglers after it
    warmup: float  # unmeasured run at the first rate before the sweep
    profiles: Path | None = None  # where the services' py-spy samples of each step go (--profile)


def measure_platform(
    stack: LocalStack, state: Path, rates: list[float], timing: Timing, mode: Webhooks, ladder: Ladder | None
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], dict[str, Any] | None]:
    """The platform's ladders of `mode` on one set of services: without an endpoint first, then (after
    registering one for the bench's shop, before its warm-up) with it; each followed by its ceiling
    search when there is a `ladder`. Returns the ladders by name, their ceilings by name and the
    endpoint (without its secret)."""
    assert stack.postgres is not None, "the bench reads the order database (its shop events)"
    env = {
        **os.environ,
        **stack.environment(),
        "SAGA_STATE_DIR": str(state),
        "DELIVERY_AUTO_PROGRESS_SECONDS": "0",
        "ORDER_DELIVERY_DEADLINE_SECONDS": "120",
        "SAGA_LOG_LEVEL": "warning",
        **{f"{service.value.upper()}_HTTP_PORT": str(free_port()) for service in Service},
    }
    settings = Settings.model_validate(env)
    # As the platform's users: the operator stocks the shelves, the shop sends checkouts with its own key.
    keys = stack.demo_keys()
    with running_services(env, state) as processes:
        delivery = settings.base_url(Service.DELIVERY)
        for sku, units in (("BENCH-PLENTY", 1_000_000), ("BENCH-NONE", 0)):
            httpx.put(
                f"{delivery}/inventory/{sku}",
                json={"on_hand": units},
                timeout=10,
                headers=bearer(keys[Scope.OPERATOR]),
            ).raise_for_status()
        pids = {
            **{s.value: p.process.pid for s, p in processes.items() if p.process is not None},
            **infrastructure_pids(stack),
        }

        def driver() -> ShopClient:
            return ShopClient(
                settings.base_url(Service.PAYMENT),
                settings.base_url(Service.ORDER),
                "BENCH-PLENTY",
                "BENCH-NONE",
                api_key=keys[Scope.SHOP],
            )

        bootstrap = settings.kafka_bootstrap_servers or ""
        order_db = stack.postgres.admin_conninfo(Service.ORDER.value)
        databases = {service.value: stack.postgres.admin_conninfo(service.value) for service in Service}
        counters = stack.postgres.admin_conninfo()  # the server's own database: the statement counters
        ladders: dict[str, list[dict[str, Any]]] = {}
        ceilings: dict[str, dict[str, Any]] = {}
        endpoint: dict[str, Any] | None = None
        idle = idle_level(pids) if ladder is not None else 0.0  # before any load: the search's settle

        def measure(name: str, measured: dict[str, int], ends: StepEnd) -> None:
            chain = Chain(name, driver, bootstrap, measured, timing, ends, databases, idle, counters)
            ladders[name], found = sweep(chain, rates, ladder)
            if found is not None:
                ceilings[name] = found

        if mode in (Webhooks.OFF, Webhooks.BOTH):
            measure(PLATFORM, pids, StepEnd(order_db, SHOP, None, timing.drain))
        if mode in (Webhooks.ON, Webhooks.BOTH):
            with running_receiver(state, GENERATOR_NICENESS) as receiver:
                created = subscribe(settings.base_url(Service.ORDER), keys[Scope.SHOP], receiver.url)
                endpoint = {k: created[k] for k in ("id", "owner", "url", "event_types")}
                ends = StepEnd(order_db, SHOP, Subscription(receiver, created["id"]), timing.drain)
                measure(PLATFORM_WEBHOOKS, {**pids, RECEIVER: receiver.pid}, ends)
        return ladders, ceilings, endpoint


def measure_raw(
    stack: LocalStack, state: Path, rates: list[float], timing: Timing, ladder: Ladder | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The raw chain's ladder, and its ceiling search when there is a `ladder`."""
    assert stack.postgres is not None, "the raw chain needs the local PostgreSQL"
    with psycopg.connect(stack.postgres.admin_conninfo(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS raw_chain")
        admin.execute("CREATE DATABASE raw_chain")
    dsn = stack.postgres.admin_conninfo("raw_chain")
    bootstrap = stack.kafka_bootstrap_servers
    asyncio.run(prepare(bootstrap, dsn, load_settings().topic_partitions))
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-m", "bench.raw_chain", name, bootstrap, dsn],
            stdout=subprocess.PIPE,
            stderr=(state / f"raw-{name}.log").open("w"),
            text=True,
        )
        for name in ("payment", "order", "delivery")
    }
    try:
        for name, worker in workers.items():
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line.strip() == "ready", f"raw {name} worker did not start (see {state}/raw-{name}.log)"
        time.sleep(5)  # let the three consumer groups settle their assignments before timing
        pids = {f"raw-{name}": worker.pid for name, worker in workers.items()} | infrastructure_pids(stack)
        idle = idle_level(pids) if ladder is not None else 0.0  # before any load: the search's settle
        chain = Chain("raw", lambda: RawDriver(bootstrap, dsn), bootstrap, pids, timing, idle_cores=idle)
        return sweep(chain, rates, ladder)
    finally:
        for worker in workers.values():
            worker.terminate()
            worker.wait(10)


GENERATOR_NICENESS = -5
# The bench's shop: the caller whose demo key sends the checkouts (the owner of their orders).
SHOP = next(name for name, scope in DEMO_CALLERS.items() if scope is Scope.SHOP)


@contextmanager
def generator_first() -> Iterator[None]:
    """While it measures, the generator's thread runs ahead of the processes it measures.

    On a saturated machine every runnable thread gets an equal share of the two cores, and the open-loop
    generator then falls behind its schedule: it offers less than the rate (the step fails on "generator
    late") because of its own starvation, not the platform's. A load generator on its own machine would
    not compete; here it goes first, and the platform gets what the generator leaves. The services,
    Kafka and PostgreSQL are already running, so they keep the normal priority (Linux's niceness is per
    thread and inherited at start). Without the privilege to raise it, it runs as it is.
    """
    normal = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, normal + GENERATOR_NICENESS)
    except PermissionError:
        console.print("generator: no privilege to run ahead of the services; it shares the cores equally")
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, normal)


@dataclass(frozen=True)
class Chain:
    """What a ladder measures: its name in the results, how a saga starts, whose CPU counts (`pids`), the
    step's timing, and for the platform how a step ends (`ends`) and where its hops are read."""

    name: str
    new_driver: Callable[[], Driver]
    bootstrap: str
    pids: dict[str, int]
    timing: Timing
    ends: StepEnd | None = None
    databases: dict[str, str] | None = None
    idle_cores: float = 0.0  # what the processes under test use with no load (`idle_level`)
    counters: str | None = None  # where PostgreSQL's statement counters are read (bench/statements.py)


@generator_first()
def sweep(
    chain: Chain, rates: list[float], ladder: Ladder | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Each rate in turn (after the warm-up), then, with a `ladder`, the search for the chain's ceiling
    from those verdicts on. Returns the fixed ladder's steps and the search (None without one)."""
    first = rates[0] if rates else ladder.start if ladder is not None else None
    timing = chain.timing
    if timing.warmup > 0 and first is not None:
        warm_up(chain, first)
    steps = [measure_step(chain, rate) for rate in rates]
    return steps, find_ceiling(chain, steps, ladder) if ladder is not None else None


def warm_up(chain: Chain, rate: float) -> None:
    """Unmeasured load at `rate` before the first step: SQLAlchemy's statement caches and the connection
    pools fill on the first sagas, and the broker's JIT compiles its hot paths, which takes minutes, so
    the warm-up goes on until the compiler is quiet (bench/jit.py)."""
    timing = chain.timing

    def run_round(seconds: float) -> None:
        asyncio.run(_one_step(chain.new_driver(), chain.bootstrap, rate, seconds, timing.drain, chain.ends))
        if chain.ends is not None:
            asyncio.run(chain.ends.webhooks())  # its stragglers must not arrive during the first step

    console.print(f"{chain.name}: warming up at {rate:g} sagas/s for {timing.warmup:g} s (not measured)…")
    warmed = jit.warm_until_quiet(run_round, _broker_compiler(chain), timing.warmup)
    if warmed.compiler_ms_per_s is None:
        console.print(f"{chain.name}: the broker's compiler cannot be read here; warmed {timing.warmup:g} s")
        return
    state = "quiet" if warmed.quiet else "still compiling: its steps are measured on a cold broker"
    console.print(
        f"{chain.name}: warmed {timing.warmup + warmed.extra_seconds:g} s, the broker's JIT at"
        f" {warmed.compiler_ms_per_s:.0f} ms/s ({state})"
    )


def _broker_compiler(chain: Chain) -> jit.CompilerMeter:
    kafka = chain.pids.get("kafka")
    return jit.CompilerMeter(
        read=(lambda: jit.compiler_cpu_seconds(kafka)) if kafka is not None else (lambda: None),
        clock=time.monotonic,
    )


def measure_step(chain: Chain, rate: float) -> dict[str, Any]:
    """One step at `rate`. Its CPU is counted until `ends` has seen order record every saga's end; its
    webhooks are waited for after that, and then the step's sagas are broken down into hops from the
    services' `databases` (bench/hops.py)."""
    timing, ends, pids = chain.timing, chain.ends, chain.pids
    console.print(f"{chain.name}: offering {rate:g} sagas/s for {timing.seconds:g} s…")
    before = {**sample(pids), GENERATOR: own_cpu_seconds()}
    compiler = _broker_compiler(chain)
    compiling = compiler.start()
    services = {process: pid for process, pid in pids.items() if process in set(Service)}
    if chain.counters is not None:
        asyncio.run(statements.reset(chain.counters))
    with _profiled(services, timing, f"{chain.name}-{rate:g}") as profile:
        figures, details = asyncio.run(
            _one_step(chain.new_driver(), chain.bootstrap, rate, timing.seconds, timing.drain, ends)
        )
    cpu = used(before, {**sample(pids), GENERATOR: own_cpu_seconds()})
    details["kafka_jit_ms_per_s"] = compiler.since(compiling)  # part of Kafka's CPU: a cold broker's
    if ends is not None:
        details.update(asyncio.run(ends.webhooks()))
        if chain.counters is not None:
            details["statements"], details["heaviest_statements"] = asyncio.run(
                statements.measure(chain.counters, services, figures.finished)
            )
        if chain.databases is not None:
            details["hops"] = asyncio.run(hops.measure(chain.databases, ends.saga_ids))
    if timing.profiles is not None:
        details["profile"] = profile()
    per_saga = {process: seconds_ / max(figures.finished, 1) for process, seconds_ in cpu.items()}
    step = {**asdict(figures), **details, "cpu_seconds": cpu, "cpu_ms_per_saga": _ms(per_saga)}
    console.print(_line(figures))
    if details.get("webhooks"):
        console.print(_webhook_line(details["webhooks"]))
    return step


def find_ceiling(chain: Chain, steps: list[dict[str, Any]], ladder: Ladder) -> dict[str, Any]:
    """The ceiling search (bench/ceiling.py), going on from the fixed ladder's verdicts: each probe a
    full step, once the processes under test are quiet again (`settle`). What results.json keeps."""
    probes: list[dict[str, Any]] = []

    def measure(rate: float) -> bool:
        last = probes[-1] if probes else steps[-1] if steps else None
        settled = settle(chain.pids, chain.idle_cores, last["unfinished"] if last else 0)
        console.print(f"{chain.name}: ceiling search, probe {len(probes) + 1}{_settled(settled)}")
        probes.append({**measure_step(chain, rate), "settle": settled})
        return bool(probes[-1]["sustainable"])

    seeded = [Verdict(step["offered_rate"], step["sustainable"]) for step in steps]
    found = search(measure, seeded, ladder)
    best = (
        f"{found.max_sustainable:g} sagas/s" if found.max_sustainable is not None else "nothing sustainable"
    )
    console.print(f"{chain.name}: ceiling {best} ({found.why})")
    return {
        "max_sustainable": found.max_sustainable,
        "lowest_failure": found.lowest_failure,
        "stopped": found.why,
        "idle_cores": round(chain.idle_cores, 2),
        "seeded_from": [asdict(verdict) for verdict in seeded],
        "ladder": {
            "start": ladder.start,
            "factor": ladder.factor,
            "resolution": str(ladder.resolution),
            "probes": ladder.probes,
        },
        "probes": probes,
    }


# A step past the ceiling can leave sagas in flight when its drain runs out (a backlog in the topics):
# the next probe must not start on it, or a rate below the ceiling would fail on the last one's
# leftovers. The processes under test are quiet again when they use less than this many cores above
# their idle level, and less than QUIET_CORES whatever that level (working off a backlog keeps the two
# cores busy; right after a step Kafka and PostgreSQL still use a few tenths of a core).
QUIET_ABOVE_IDLE_CORES = 0.2
QUIET_CORES = 0.6
QUIET_WINDOW_S = 2.0
SETTLE_LIMIT_S = 600.0
# An idle level above this was measured while something was still starting: the bound is used instead.
IDLE_AT_MOST_CORES = 0.5


def idle_level(pids: dict[str, int]) -> float:
    """The cores the processes under test use with no load, measured before any step (and bounded)."""
    return min(busy_cores(pids), IDLE_AT_MOST_CORES)


def busy_cores(pids: dict[str, int], window: float = QUIET_WINDOW_S) -> float:
    """Cores used by the processes under test over `window` seconds (the shops' side left out)."""
    watched = {name: pid for name, pid in pids.items() if name not in (GENERATOR, RECEIVER)}
    before = sample(watched)
    time.sleep(window)
    return sum(used(before, sample(watched)).values()) / window


def settle(pids: dict[str, int], idle: float, leftover: int) -> dict[str, float]:
    """With sagas `leftover` in flight from the last step, wait until the processes under test are quiet
    (or `SETTLE_LIMIT_S` has passed); with none, nothing is left to work off. Returns what results.json
    keeps: the leftover sagas, the seconds waited and the cores used in the last window."""
    if not leftover:
        return {"leftover": 0, "waited_s": 0.0}
    began = time.monotonic()
    while True:
        cores = busy_cores(pids)
        waited = time.monotonic() - began
        if cores < max(idle + QUIET_ABOVE_IDLE_CORES, QUIET_CORES) or waited >= SETTLE_LIMIT_S:
            return {"leftover": leftover, "waited_s": round(waited, 1), "cores": round(cores, 2)}


def _settled(settled: dict[str, float]) -> str:
    if not settled["leftover"]:
        return ""
    return f" (after {settled['waited_s']:g} s for the last step's {settled['leftover']:g} unfinished sagas)"


@contextmanager
def _profiled(pids: dict[str, int], timing: Timing, label: str) -> Iterator[Callable[[], dict[str, Any]]]:
    """With --profile, py-spy samples `pids` during the step; the callable gives each one's top frames."""
    out = timing.profiles
    if out is None:
        yield dict
        return
    folder: Path = out
    with profiles.sampling(pids, timing.seconds, folder, label):
        yield lambda: {name: profiles.top_frames(folder / f"{label}-{name}.txt") for name in pids}


async def _one_step(
    driver: Driver,
    bootstrap: str,
    rate: float,
    seconds: float,
    drain: float,
    at_end: Callable[[Tracker], Awaitable[dict[str, Any]]] | None,
) -> Any:
    await driver.start()
    try:
        return await run_step(driver, bootstrap, rate, seconds, drain_seconds=drain, at_end=at_end)
    finally:
        await driver.close()


def _ms(per_saga: dict[str, float]) -> dict[str, float]:
    return {process: round(value * 1000, 2) for process, value in per_saga.items()}


def _line(f: StepFigures) -> str:
    verdict = "sustainable" if f.sustainable else "NOT sustainable"
    return (
        f"  offered {f.offered_rate:g}/s: completed {f.completed_per_second:.1f}/s, "
        f"{f.finished}/{f.accepted} finished, p50 {f.p50_ms:.0f} ms, p95 {f.p95_ms:.0f} ms, "
        f"p99 {f.p99_ms:.0f} ms, max {f.max_ms:.0f} ms, "
        f"backlog {f.backlog_growth_per_second:+.1f}/s, generator late {f.schedule_slip_ms:.0f} ms: {verdict}"
    )


def _webhook_line(w: dict[str, Any]) -> str:
    latency = w["latency"]
    return (
        f"  webhooks: {w['received']}/{w['expected']} events, p50 {latency['p50_ms']:.0f} ms, "
        f"p99 {latency['p99_ms']:.0f} ms, max {latency['max_ms']:.0f} ms, "
        f"{w['duplicates']} duplicates, {w['out_of_order']} out of order, "
        f"{w['stalled']} picked up > {STALLED_AFTER_S:g} s after they could be sent"
    )


if __name__ == "__main__":
    app()
