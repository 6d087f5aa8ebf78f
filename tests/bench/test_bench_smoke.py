"""The benchmark's code path on the real stack, for a few seconds at a low rate, webhooks included. No timing
is asserted: performance is reported by `make bench` (bench/README.md), not tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_the_benchmark_drives_sagas_to_their_end_and_writes_its_report(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "KAFKA_BOOTSTRAP_SERVERS" and not k.endswith("_DATABASE_URL")
    }
    env["SAGA_STATE_DIR"] = str(tmp_path / "state")
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    # --quick measures the platform with a webhook endpoint for the bench's shop (and the raw chain).
    assert set(results["steps"]) == {"platform+webhooks", "raw"}
    for name in ("platform+webhooks", "raw"):
        [step] = results["steps"][name]
        assert step["accepted"] > 0 and step["finished"] == step["accepted"], (name, step)
        assert step["p50_ms"] <= step["p99_ms"] <= step["max_ms"]
        assert step["cpu_seconds"]["kafka"] > 0 and step["cpu_seconds"]["postgres"] > 0
    [platform] = results["steps"]["platform+webhooks"]
    assert sum(platform["outcomes"].values()) == platform["finished"]
    # PostgreSQL counted each service's round trips (bench/statements.py): every service wrote, in
    # transactions, for these sagas.
    assert set(platform["statements"]) == {"payment", "order", "delivery"}
    for counted in platform["statements"].values():
        assert counted["statements"] > counted["transactions"] > 0, platform["statements"]
    # The raw chain runs the platform's mix (the same kinds of saga, drawn alike), each to its outcome.
    [raw] = results["steps"]["raw"]
    kinds = {kind: figures["n"] for kind, figures in raw["latency_by_kind"].items()}
    assert kinds == {kind: figures["n"] for kind, figures in platform["latency_by_kind"].items()}
    assert raw["outcomes"] == {
        "COMPLETED": kinds.get("happy", 0),
        "REFUNDED": kinds.get("out_of_stock", 0) + kinds.get("cancel", 0),
        "REJECTED": kinds.get("declined", 0),
    }
    assert results["ceilings"] == {}  # --quick searches no ceiling
    # The webhook path: every event order recorded for the step's orders reached the receiver, and each
    # got a latency (how large is the full run's business, not this test's).
    webhooks = platform["webhooks"]
    assert webhooks["expected"] > 0 and webhooks["received"] == webhooks["expected"], webhooks
    for figures in (webhooks["latency"], webhooks["placed"], webhooks["terminal"]):
        assert figures["n"] > 0 and figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"], webhooks
    assert platform["cpu_seconds"]["receiver"] > 0
    assert results["webhooks"]["endpoint"]["url"].startswith("http://127.0.0.1:")
    assert (out / "latency.png").stat().st_size > 10_000
    report = (out / "results.md").read_text()
    assert "| offered/s |" in report and "| webhook p50 / p95 / p99 / max ms |" in report
    assert "Round trips to PostgreSQL" in report
