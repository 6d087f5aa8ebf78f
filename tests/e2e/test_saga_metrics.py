"""The saga figures an operator alerts on, as /metrics answers them on the real stack: sagas in flight by
status (order), refunds not succeeded (payment), and the age of each service's oldest unpublished row."""

from __future__ import annotations

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
