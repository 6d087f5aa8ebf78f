"""The benchmark's code path on the real stack, for a few seconds at a low rate. No timing is asserted:
performance is reported by `make bench` (bench/README.md), not tested."""

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
    for name in ("platform", "raw"):
        [step] = results["steps"][name]
        assert step["accepted"] > 0 and step["finished"] == step["accepted"], (name, step)
        assert step["p50_ms"] <= step["p99_ms"] <= step["max_ms"]
        assert step["cpu_seconds"]["kafka"] > 0 and step["cpu_seconds"]["postgres"] > 0
    assert (
        sum(results["steps"]["platform"][0]["outcomes"].values())
        == results["steps"]["platform"][0]["finished"]
    )
    assert (out / "latency.png").stat().st_size > 10_000
    assert "| offered/s |" in (out / "results.md").read_text()
