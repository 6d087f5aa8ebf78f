"""The saga figures an operator alerts on, as /metrics answers them on the real stack: sagas in flight by
status (order), refunds not succeeded (payment), and the age of each service's oldest unpublished row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from common.config import Service
from order.metrics import IN_FLIGHT
from tests.e2e.conftest import Shop


def samples(shop: Shop, service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = shop.http.get(shop.url(service, "/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_sagas_in_flight_are_counted_by_status_every_status_a_series(shop: Shop) -> None:
    order_id = shop.checkout([(shop.stock(1), 1)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    figures = samples(shop, Service.ORDER)
    in_flight = {
        labels[0][1]: value for (name, labels), value in figures.items() if name == "saga_orders_in_flight"
    }
    assert set(in_flight) == {status.lower() for status in IN_FLIGHT}  # 0 included: no series vanishes
    assert in_flight["scheduled"] >= 1
    assert "completed" not in in_flight
    shop.ship_and_deliver(order_id)
    shop.wait_for(order_id, "COMPLETED")


def test_refunds_not_succeeded_and_the_oldest_unpublished_row_are_on_every_scrape(shop: Shop) -> None:
    refunds = samples(shop, Service.PAYMENT)
    assert {labels for name, labels in refunds if name == "saga_refunds"} == {
        (("status", "pending"),),
        (("status", "failed"),),
    }
    for service in Service:
        figures = samples(shop, service)
        age = figures[("saga_outbox_oldest_pending_seconds", (("service", service.value),))]
        # A settled platform publishes within moments; a stalled relay would show its rows' age here.
        assert 0 <= age < 60, (service, age)


def test_every_metric_the_alerts_and_the_dashboard_use_is_one_the_services_export(shop: Shop) -> None:
    observability = Path(__file__).resolve().parents[2] / "observability"
    rules = yaml.safe_load((observability / "prometheus" / "alerts.yml").read_text())
    queries = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((observability / "grafana" / "dashboards" / "saga-platform.json").read_text())
    queries += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for query in queries for name in re.findall(r"\bsaga_[a-z_]+\b", query)}
    exported = {name for service in Service for name, _ in samples(shop, service)}
    assert used and used <= exported, sorted(used - exported)
