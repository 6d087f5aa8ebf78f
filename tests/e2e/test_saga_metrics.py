"""The saga figures an operator alerts on, as /metrics answers them on the real stack: sagas in flight by
status (order), refunds not succeeded (payment), and the age of each service's oldest unpublished row."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from common.config import Service
from common.services import SERVICES
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


def test_a_finished_saga_is_timed_from_its_checkout_under_its_outcome(shop: Shop) -> None:
    def finished() -> dict[str, float]:
        return {
            labels[0][1]: value
            for (name, labels), value in samples(shop, Service.ORDER).items()
            if name == "saga_duration_seconds_count"
        }

    before = finished()
    assert set(before) == {"completed", "rejected", "refunded"}  # every outcome a series, 0 included
    completed = shop.checkout([(shop.stock(1), 1)])["order_id"]
    declined = shop.checkout([(shop.stock(1), 1)], card="tok_declined")["order_id"]
    shop.ship_and_deliver(completed)
    shop.wait_for(completed, "COMPLETED")
    shop.wait_for(declined, "REJECTED")
    after = finished()
    assert after["completed"] >= before["completed"] + 1
    assert after["rejected"] >= before["rejected"] + 1
    seconds = samples(shop, Service.ORDER)[("saga_duration_seconds_sum", (("outcome", "completed"),))]
    assert seconds > 0


def test_each_service_reports_its_lag_on_every_partition_it_reads_and_catches_up(shop: Shop) -> None:
    order_id = shop.checkout([(shop.stock(1), 1)])["order_id"]
    shop.ship_and_deliver(order_id)
    shop.wait_for(order_id, "COMPLETED")
    partitions = int(shop.platform.environment.get("SAGA_TOPIC_PARTITIONS", "3"))
    for service in Service:
        # One worker per service here: it holds every partition of the topics it reads.
        held = {(topic, str(n)) for topic in SERVICES[service].consumed_topics for n in range(partitions)}
        deadline = time.monotonic() + 30
        while True:
            lags = {
                (dict(labels)["topic"], dict(labels)["partition"]): value
                for (name, labels), value in samples(shop, service).items()
                if name == "saga_consumer_lag"
            }
            if set(lags) == held and sum(lags.values()) == 0:
                break
            assert time.monotonic() < deadline, (service, lags)
            time.sleep(0.5)


def test_every_service_reports_its_garbage_collectors_pauses_with_startups_objects_frozen(shop: Shop) -> None:
    for service in Service:
        figures = samples(shop, service)
        # What a service's imports and app built (about 146,000 objects): out of every collection's reach.
        assert figures[("saga_gc_frozen_objects", (("service", service.value),))] > 10_000, service
        young = (("generation", "0"), ("service", service.value))
        assert figures[("saga_gc_pause_seconds_count", young)] > 0, service  # a running service collects
        full = (("generation", "2"), ("service", service.value))
        assert ("saga_gc_pause_seconds_sum", full) in figures, service
