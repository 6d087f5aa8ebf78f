"""The benchmark's tables (results.md) and plot (latency.png), from results.json's data."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.cpu import RECEIVER
from bench.statements import total as statement_total
from bench.stats import MAX_SCHEDULE_SLIP_S

# The platform's own processes: what "CPU per saga" compares between webhooks on and off (the generator
# and the receiver stand in for the shop's machines, reported apart).
PLATFORM_PROCESSES = ("payment", "order", "delivery", "kafka", "postgres")


def write_report(results: dict[str, Any], out: Path) -> None:
    (out / "results.md").write_text(tables(results))
    plot(results, out / "latency.png")


def max_sustainable(steps: list[dict[str, Any]]) -> float | None:
    """The highest offered rate up to which every run was sustainable (every saga finished, backlog flat).

    A rate that passes above one that failed does not count: past saturation a batching consumer can
    catch up in the second half of a run on a backlog it built in the first (bigger batches, cheaper
    events), which flattens the backlog at seconds of latency. That is not a rate it sustains.
    """
    best: float | None = None
    for step in sorted(steps, key=lambda step: step["offered_rate"]):
        if not step["sustainable"]:
            break
        best = step["offered_rate"]
    return best


def _rate(rate: float | None) -> str:
    return f"{rate:g} sagas/s" if rate else "none sustainable"


def _heading(name: str, steps: list[dict[str, Any]], ceiling: dict[str, Any] | None) -> str:
    """The ladder's max sustainable rate, and with a search the ceiling it found (over both)."""
    if ceiling is None:
        best = max_sustainable(steps)
        return f"### {name} (max sustainable: {best:g} sagas/s)" if best else f"### {name} (none sustainable)"
    return (
        f"### {name} (max sustainable on this ladder: {_rate(max_sustainable(steps))}; "
        f"ceiling search: {_rate(ceiling['max_sustainable'])})"
    )


def tables(results: dict[str, Any]) -> str:
    lines = [f"Arrival window per step: {results['seconds']:g} s. Machine: {results['machine']}", ""]
    ceilings: dict[str, dict[str, Any]] = results.get("ceilings") or {}
    for name, steps in results["steps"].items():
        lines += [
            _heading(name, steps, ceilings.get(name)),
            "",
            "| offered/s | completed/s | finished | p50 ms | p95 ms | p99 ms | max ms | backlog/s "
            "| generator late ms | sustainable | CPU ms per saga | broker's JIT ms/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for step in steps:
            cpu = ", ".join(f"{process} {ms:g}" for process, ms in step["cpu_ms_per_saga"].items())
            lines.append(
                f"| {step['offered_rate']:g} | {step['completed_per_second']:.1f} | "
                f"{step['finished']}/{step['accepted']} | {step['p50_ms']:.0f} | {step['p95_ms']:.0f} | "
                f"{step['p99_ms']:.0f} | {step['max_ms']:.0f} | {step['backlog_growth_per_second']:+.1f} | "
                f"{step['schedule_slip_ms']:.0f} | {'yes' if step['sustainable'] else 'no'} | {cpu} | "
                f"{_jit(step.get('kafka_jit_ms_per_s'))} |"
            )
        lines.append("")
        lines += _latency_by_kind(steps)
        lines += _webhook_table(name, steps)
        lines += _statement_table(name, steps)
        lines += _heaviest_statements(name, steps)
        lines += _hop_table(name, steps)
        lines += _profile_table(name, steps)
        if name in ceilings:
            lines += _ceiling_table(name, ceilings[name])
    if results.get("webhook_comparison"):
        lines += _comparison_table(results["webhook_comparison"])
    raw = max_sustainable(results["steps"].get("raw", []))
    for name, steps in results["steps"].items():
        platform = max_sustainable(steps)
        if name != "raw" and platform and raw:
            ratio = f"{platform:g} / {raw:g} = {platform / raw:.2f}"
            lines.append(f"{name.capitalize()} / raw chain (max sustainable on the ladders): {ratio}")
    lines += _ceiling_ratios(ceilings)
    return "\n".join(lines) + "\n"


def _jit(ms_per_s: float | None) -> str:
    """The broker's compiler during a step (bench/jit.py): "—" where it could not be read."""
    return "—" if ms_per_s is None else f"{ms_per_s:.0f}"


def _ceiling_table(name: str, ceiling: dict[str, Any]) -> list[str]:
    """The search's probes in the order they ran, and what it found (bench/ceiling.py)."""
    seeded = ", ".join(
        f"{verdict['rate']:g} {'yes' if verdict['sustainable'] else 'no'}"
        for verdict in ceiling["seeded_from"]
    )
    ladder = ceiling["ladder"]
    lines = [
        f"Ceiling search of `{name}` (from the ladder's verdicts: {seeded or 'none'}; up by a factor of"
        f" {ladder['factor']:g}, then bisecting to {ladder['resolution']},"
        f" at most {ladder['probes']} probes):",
        "",
        "| probe | offered/s | completed/s | finished | p50 ms | p99 ms | backlog/s | generator late ms "
        "| sustainable | waited for quiet s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, step in enumerate(ceiling["probes"], start=1):
        lines.append(
            f"| {number} | {step['offered_rate']:g} | {step['completed_per_second']:.1f} | "
            f"{step['finished']}/{step['accepted']} | {step['p50_ms']:.0f} | {step['p99_ms']:.0f} | "
            f"{step['backlog_growth_per_second']:+.1f} | {step['schedule_slip_ms']:.0f} | "
            f"{'yes' if step['sustainable'] else 'no'} | {step['settle']['waited_s']:g} |"
        )
    failure = ceiling["lowest_failure"]
    failed = f"{failure:g}/s" if failure else "none"
    lines += [
        "",
        f"Ceiling of `{name}`: {_rate(ceiling['max_sustainable'])}"
        f" (lowest rate that failed: {failed}; stopped: {ceiling['stopped']}).",
        "",
    ]
    return lines


def _ceiling_ratios(ceilings: dict[str, dict[str, Any]]) -> list[str]:
    """Each platform ladder's ceiling against the raw chain's, both found by the search."""
    raw = (ceilings.get("raw") or {}).get("max_sustainable")
    lines = []
    for name, ceiling in ceilings.items():
        platform = ceiling["max_sustainable"]
        if name != "raw" and platform and raw:
            ratio = f"{platform:g} / {raw:g} = {platform / raw:.2f}"
            lines.append(f"{name.capitalize()} / raw chain (ceilings found by the search): {ratio}")
    return lines


def _ms(figures: dict[str, float], *keys: str) -> str:
    return " / ".join(f"{figures[key]:.0f}" for key in keys)


def _webhook_table(name: str, steps: list[dict[str, Any]]) -> list[str]:
    """Per rate: webhook latency (every event; the first of each saga; the last), what arrived, and how
    soon the sender started each event's first attempt once it could be sent (bench/webhooks.py)."""
    rows = [step for step in steps if step.get("webhooks")]
    if not rows:
        return []
    lines = [
        f"Webhooks of `{name}` (status change written → the receiver has the request):",
        "",
        "| offered/s | webhook p50 / p95 / p99 / max ms | order.placed p50 / p99 ms | terminal p50 / p99 ms "
        "| events received / expected | missing | duplicates | out of order | sender pickup p50 / p99 ms "
        "| picked up > 1 s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in rows:
        w = step["webhooks"]
        cells = [
            f"{step['offered_rate']:g}",
            _ms(w["latency"], "p50_ms", "p95_ms", "p99_ms", "max_ms"),
            _ms(w["placed"], "p50_ms", "p99_ms"),
            _ms(w["terminal"], "p50_ms", "p99_ms"),
            f"{w['received']} / {w['expected']}",
            str(w["missing"]),
            str(w["duplicates"]),
            str(w["out_of_order"]),
            _ms(w["pickup"], "p50_ms", "p99_ms"),
            str(w["stalled"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _hop_table(name: str, steps: list[dict[str, Any]]) -> list[str]:
    """Per rate and step of the saga: p50 / p99 of each part (bench/hops.py), the commonest steps first."""
    rows = [step for step in steps if step.get("hops")]
    if not rows:
        return []
    lines = [
        f"Where the milliseconds go in `{name}` (each step from one event's transaction to the next's; "
        "p50 / p99 ms; bench/hops.py):",
        "",
        "| offered/s | step | sagas | total | outbox wait | transit | applied | in service |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for step in rows:
        for label, parts in step["hops"].items():
            cells = [
                f"{step['offered_rate']:g}",
                label,
                str(parts["count"]),
                *(_ms(parts[part], "p50_ms", "p99_ms") if part in parts else "—" for part in _HOP_PARTS),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


_HOP_PARTS = ("total", "outbox_wait", "transit", "applied", "in_service")


def _statement_table(name: str, steps: list[dict[str, Any]]) -> list[str]:
    """Per rate: each service's statements and transactions per saga (bench/statements.py)."""
    rows = [step for step in steps if step.get("statements")]
    if not rows:
        return []
    services = list(rows[0]["statements"])
    lines = [
        f"Round trips to PostgreSQL in `{name}` (statements / transactions per saga, as PostgreSQL counted "
        "them; exact, whatever the machine's noise; bench/statements.py):",
        "",
        "| offered/s | " + " | ".join(services) + " | all |",
        "|---|" + "---|" * (len(services) + 1),
    ]
    for step in rows:
        counted = step["statements"]
        cells = [
            f"{counted[service]['statements']:g} / {counted[service]['transactions']:g}"
            for service in services
        ]
        together = statement_total(counted)
        cells.append(f"{together['statements']:g} / {together['transactions']:g}")
        lines.append(f"| {step['offered_rate']:g} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _heaviest_statements(name: str, steps: list[dict[str, Any]]) -> list[str]:
    """At the lowest rate measured (where each event pays its own round trips): each service's most
    frequent statements per saga, the first place to look for a round trip to save."""
    rows = [step for step in steps if step.get("heaviest_statements")]
    if not rows:
        return []
    step = min(rows, key=lambda row: row["offered_rate"])
    lines = [
        f"The statements sent most often in `{name}` at {step['offered_rate']:g} sagas/s (calls per saga;"
        " bench/statements.py):",
        "",
        "| service | per saga | statement |",
        "|---|---|---|",
    ]
    for service, heaviest in step["heaviest_statements"].items():
        for per_saga, text in heaviest:
            shown = text if len(text) <= 110 else text[:107] + "..."
            lines.append(f"| {service} | {per_saga:g} | `{shown.replace('|', '/')}` |")
    return [*lines, ""]


def _profile_table(name: str, steps: list[dict[str, Any]]) -> list[str]:
    """Per rate and service (a `--profile` run): where its samples ran, by library, and its top frames."""
    rows = [step for step in steps if step.get("profile")]
    if not rows:
        return []
    lines = [
        f"Where the CPU goes in `{name}` (py-spy, `--profile`; % of the service's samples):",
        "",
        "| offered/s | service | samples | by library | most time of their own |",
        "|---|---|---|---|---|",
    ]
    for step in rows:
        for service, top in step["profile"].items():
            libraries = ", ".join(f"{library} {share:g}" for library, share in top["by_library_percent"][:6])
            own = "; ".join(f"`{frame}` {share:g}" for frame, share in top["own_percent"][:4])
            cells = [f"{step['offered_rate']:g}", service, str(top["samples"]), libraries, own]
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def platform_cpu_ms(step: dict[str, Any]) -> float:
    """CPU ms per saga of the platform's own processes (services, Kafka, PostgreSQL)."""
    return sum(step["cpu_ms_per_saga"].get(process, 0.0) for process in PLATFORM_PROCESSES)


def change_pct(off: float, on: float) -> float:
    """(on - off) / off in %; NaN where off is 0 or either is NaN."""
    if not off or math.isnan(off) or math.isnan(on):
        return math.nan
    return (on - off) / off * 100


_COMPARED: dict[str, Callable[[dict[str, Any]], float]] = {
    "completed_per_second": lambda step: step["completed_per_second"],
    "p50_ms": lambda step: step["p50_ms"],
    "p99_ms": lambda step: step["p99_ms"],
    "platform_cpu_ms_per_saga": platform_cpu_ms,
    "order_cpu_ms_per_saga": lambda step: step["cpu_ms_per_saga"].get("order", math.nan),
}


def compare_webhooks(off: list[dict[str, Any]], on: list[dict[str, Any]]) -> dict[str, Any]:
    """The platform without and with a webhook endpoint, at each rate both ladders offered: completed
    sagas/s, the saga's p50/p99, CPU per saga (the platform's processes; order's, which sends the
    webhooks, on its own), each with the change in %.

    The throughput claim ("with webhooks on within 10 % of off") is judged on what the platform can
    give, not on what it was offered: completed/s at the highest rate both ladders offered (a rate past
    the ceiling measures capacity; below it both complete what is offered, whatever they cost), and the
    max sustainable rate of each ladder.
    """
    off_by_rate = {step["offered_rate"]: step for step in off}
    rows = []
    for step in on:
        before = off_by_rate.get(step["offered_rate"])
        if before is None:
            continue
        row: dict[str, Any] = {"offered_rate": step["offered_rate"]}
        for key, value in _COMPARED.items():
            row[key] = {
                "off": value(before),
                "on": value(step),
                "change_pct": change_pct(value(before), value(step)),
            }
        row["receiver_cpu_ms_per_saga"] = step["cpu_ms_per_saga"].get(RECEIVER, math.nan)
        row["sustainable"] = {"off": before["sustainable"], "on": step["sustainable"]}
        row["generator_late_ms"] = {"off": before["schedule_slip_ms"], "on": step["schedule_slip_ms"]}
        rows.append(row)
    top = max(rows, key=lambda row: row["offered_rate"], default=None)
    return {
        "rates": rows,
        "max_sustainable": {"off": max_sustainable(off), "on": max_sustainable(on)},
        "throughput_at_top_rate": (
            {
                "offered_rate": top["offered_rate"],
                **top["completed_per_second"],
                "past_ceiling": not (top["sustainable"]["off"] and top["sustainable"]["on"]),
                "generator_late_ms": top["generator_late_ms"],
            }
            if top
            else None
        ),
    }


def _off_on(figures: dict[str, float], digits: int = 0) -> str:
    change = figures["change_pct"]
    shown = "-" if math.isnan(change) else f"{change:+.1f} %"
    return f"{figures['off']:.{digits}f} / {figures['on']:.{digits}f} ({shown})"


def _comparison_table(comparison: dict[str, Any]) -> list[str]:
    lines = [
        "### Webhooks on against off (off / on, change)",
        "",
        "| offered/s | completed/s | saga p50 ms | saga p99 ms | CPU ms per saga, platform | of which order "
        "| receiver CPU ms per saga | sustainable | generator late ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in comparison["rates"]:
        cells = [
            f"{row['offered_rate']:g}",
            _off_on(row["completed_per_second"], 1),
            _off_on(row["p50_ms"]),
            _off_on(row["p99_ms"]),
            _off_on(row["platform_cpu_ms_per_saga"], 1),
            _off_on(row["order_cpu_ms_per_saga"], 1),
            f"{row['receiver_cpu_ms_per_saga']:.2f}",
            " / ".join("yes" if row["sustainable"][side] else "no" for side in ("off", "on")),
            " / ".join(f"{row['generator_late_ms'][side]:.0f}" for side in ("off", "on")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    best = comparison["max_sustainable"]
    shown = {side: f"{best[side]:g}/s" if best[side] else "none" for side in ("off", "on")}
    lines += ["", f"Max sustainable: off {shown['off']}, on {shown['on']}."]
    top = comparison["throughput_at_top_rate"]
    if top:
        change = top["change_pct"]
        within = "yes" if not math.isnan(change) and abs(change) <= 10 else "no"
        lines.append(
            f"Throughput at the highest rate of both ladders ({top['offered_rate']:g}/s offered): "
            f"{top['off']:.1f}/s off, {top['on']:.1f}/s on ({change:+.1f} %; within 10 %: {within})."
        )
        if not top["past_ceiling"]:
            lines.append(
                "Both ladders sustained it: below the ceiling, completed/s says nothing of capacity."
            )
        late = top["generator_late_ms"]
        if max(late["off"], late["on"]) > MAX_SCHEDULE_SLIP_S * 1000:
            lines.append(
                f"The generator started checkouts up to {late['off'] / 1000:.1f} s (off) and "
                f"{late['on'] / 1000:.1f} s (on) late there: it offered less than the rate, and its own "
                "CPU per saga grows past the ceiling, taken from the platform it measures (see Method)."
            )
    return [*lines, ""]


def _latency_by_kind(steps: list[dict[str, Any]]) -> list[str]:
    """p50 / p99 per kind of saga at each rate (the mix's tail belongs to the kinds with more hops)."""
    rows = [step for step in steps if step.get("latency_by_kind")]
    if not rows:
        return []
    kinds = sorted({kind for step in rows for kind in step["latency_by_kind"]})
    lines = ["| offered/s | " + " | ".join(f"{kind} p50 / p99 ms" for kind in kinds) + " |"]
    lines.append("|---|" + "---|" * len(kinds))
    for step in rows:
        cells = [
            f"{figures['p50_ms']:.0f} / {figures['p99_ms']:.0f}"
            if (figures := step["latency_by_kind"].get(kind))
            else "-"
            for kind in kinds
        ]
        lines.append(f"| {step['offered_rate']:g} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def plot(results: dict[str, Any], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(8, 5))
    styles = {"platform": "-", "platform+webhooks": ":", "raw": "--"}
    for name, steps in results["steps"].items():
        rates = [step["offered_rate"] for step in steps]
        for percentile, marker in (("p50_ms", "o"), ("p95_ms", "s"), ("p99_ms", "^")):
            axis.plot(
                rates,
                [step[percentile] for step in steps],
                styles.get(name, "-"),
                marker=marker,
                label=f"{name} {percentile[:3]}",
            )
    axis.set_xlabel("offered load (sagas/s)")
    axis.set_ylabel("accepted → terminal (ms)")
    axis.set_xscale("log")  # the platform and the raw chain live an order of magnitude apart
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    axis.set_title("Saga latency percentiles against offered load")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
