"""The observability files (observability/): the alert rules fire on the series they are about, after
their `for`, and stay silent on healthy ones (`promtool test rules` on the recorded series of
alerts_test.yml); Prometheus' configuration and every query of the Grafana dashboard are valid; compose's
`observability` profile mounts them and scrapes the services where they listen.

`make test` builds promtool from tools/promtool (pinned) when Go is installed; without it the promtool
tests skip and say why. (The metric names these files use are checked against what the services export
in tests/e2e/test_saga_metrics.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "observability"
RULES = OBSERVABILITY / "prometheus"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "saga-platform.json"


def _promtool() -> str | None:
    for candidate in (os.environ.get("PROMTOOL"), str(ROOT / ".state" / "tools" / "promtool")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("promtool")


PROMTOOL = _promtool()
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found (make test builds it from tools/promtool when Go is installed)",
)


def promtool(*args: str, cwd: Path = RULES) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def dashboard_queries() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@needs_promtool
def test_the_alert_rules_are_valid_prometheus_rules() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert count >= 7 and f"{count} rules found" in checked.stdout, checked.stdout


@needs_promtool
def test_each_alert_fires_on_its_fault_and_not_on_the_healthy_series() -> None:
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout, tested.stdout


@needs_promtool
def test_prometheus_configuration_is_valid() -> None:
    checked = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_every_query_of_the_dashboard_is_valid_promql(tmp_path: Path) -> None:
    """Each panel's query as a recording rule, which promtool parses."""
    queries = dashboard_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_{index}", "expr": query}
                    for index, query in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(queries)} rules found" in checked.stdout, checked.stdout


def test_the_observability_profile_scrapes_each_service_where_it_listens_and_mounts_the_files() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["observability"]
    config: dict[str, Any] = yaml.safe_load((RULES / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (targets,) = job["static_configs"]
    assert sorted(targets["targets"]) == sorted(f"{spec.name}:{spec.http_port}" for spec in SERVICES.values())
    assert config["rule_files"] == ["alerts.yml"]
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), volume
    assert dashboard_queries(), "a dashboard without panels"
