"""The benchmark's tables (results.md) and plot (latency.png), from results.json's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


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


def tables(results: dict[str, Any]) -> str:
    lines = [f"Arrival window per step: {results['seconds']:g} s. Machine: {results['machine']}", ""]
    for name, steps in results["steps"].items():
        best = max_sustainable(steps)
        lines += [
            f"### {name} (max sustainable: {best:g} sagas/s)" if best else f"### {name} (none sustainable)",
            "",
            "| offered/s | completed/s | finished | p50 ms | p95 ms | p99 ms | max ms | backlog/s "
            "| generator late ms | sustainable | CPU ms per saga |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for step in steps:
            cpu = ", ".join(f"{process} {ms:g}" for process, ms in step["cpu_ms_per_saga"].items())
            lines.append(
                f"| {step['offered_rate']:g} | {step['completed_per_second']:.1f} | "
                f"{step['finished']}/{step['accepted']} | {step['p50_ms']:.0f} | {step['p95_ms']:.0f} | "
                f"{step['p99_ms']:.0f} | {step['max_ms']:.0f} | {step['backlog_growth_per_second']:+.1f} | "
                f"{step['schedule_slip_ms']:.0f} | {'yes' if step['sustainable'] else 'no'} | {cpu} |"
            )
        lines.append("")
        lines += _latency_by_kind(steps)
    platform = max_sustainable(results["steps"].get("platform", []))
    raw = max_sustainable(results["steps"].get("raw", []))
    if platform and raw:
        lines.append(f"Platform / raw chain (max sustainable): {platform:g} / {raw:g} = {platform / raw:.2f}")
    return "\n".join(lines) + "\n"


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
    styles = {"platform": "-", "raw": "--"}
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
