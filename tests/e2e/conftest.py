"""The whole stack for end-to-end tests: the three services as real processes on real Kafka and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.config import Service, Settings
from common.services import SERVICES
from common.span_store import SpanReceiver
from saga_tools.local_stack.ports import free_port
from saga_tools.supervisor import ServiceProcess, running_services
from tests.carrier_steps import CARRIER_STEPS
from tests.keys import suite_headers, suite_key_environment

# Short enough for the deadline test to be quick, long enough that a slow CI machine does not hit it.
DEADLINE_SECONDS = 8.0


@dataclass
class Platform:
    settings: Settings
    processes: dict[Service, ServiceProcess]
    database_urls: dict[str, str]
    bootstrap: str
    environment: dict[str, str]

    def url(self, service: Service) -> str:
        return self.settings.base_url(service)

    def restart(self, service: Service) -> None:
        process = self.processes[service]
        process.stop()
        process.start()
        process.wait_ready()


@contextmanager
def running_platform(
    stack_environment: dict[str, str],
    state: Path,
    service_env: Mapping[Service, Mapping[str, str]] | None = None,
) -> Iterator[Platform]:
    """The three services as real processes on the given Kafka and databases, stopped on exit
    (`service_env`: each service's own variables, e.g. its principal on a secured broker)."""
    env = {
        **os.environ,
        **stack_environment,
        "SAGA_STATE_DIR": str(state),
        "ORDER_DELIVERY_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "PAYMENT_GATEWAY_TIMEOUT_SECONDS": "0.2",
        "PAYMENT_REFUND_MAX_ATTEMPTS": "3",
        "SAGA_LOG_LEVEL": "warning",
        **suite_key_environment(),
    }
    env.pop("DELIVERY_AUTO_PROGRESS_SECONDS", None)
    for service in Service:
        env[SERVICES[service].http_port_variable] = str(free_port())
    settings = Settings.model_validate(env)
    database_urls = {s.value: settings.database_url(s) or "" for s in Service}
    with running_services(env, state, service_env=service_env) as processes:
        yield Platform(settings, processes, database_urls, settings.kafka_bootstrap_servers or "", env)


@pytest.fixture(scope="session")
def span_receiver() -> Iterator[SpanReceiver]:
    """Where the shared platform sends its traces (OTLP/HTTP), kept in memory for the trace tests."""
    receiver = SpanReceiver().start()
    yield receiver
    receiver.stop()


def tracing_environment(receiver: SpanReceiver) -> dict[str, str]:
    """Traces on, sent to `receiver` within a tenth of a second of each span's end; only for sagas whose
    checkout came with a sampled `traceparent` (the trace tests'), so the fuzzer and the other tests do
    not pay for spans nobody reads, and sampling by the caller's decision is tested on the way."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "parentbased_always_off",
    }


@pytest.fixture(scope="session")
def platform(
    local_stack: Any, tmp_path_factory: pytest.TempPathFactory, span_receiver: SpanReceiver
) -> Iterator[Platform]:
    """The platform most end-to-end tests share, with traces on for the sagas a test asks to trace (the
    other stacks run with them off)."""
    environment = {**local_stack.environment(), **tracing_environment(span_receiver)}
    with running_platform(environment, tmp_path_factory.mktemp("platform")) as running:
        yield running


class Shop:
    """What a test does through the public HTTP API, as an e-commerce backend would."""

    ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http = httpx.Client(timeout=15, headers=suite_headers())

    def url(self, service: Service, path: str) -> str:
        return f"{self.platform.url(service)}{path}"

    def stock(self, on_hand: int, sku: str | None = None) -> str:
        """A fresh SKU with `on_hand` units, so tests never share stock."""
        sku = sku or f"SKU-{uuid.uuid4().hex[:8]}"
        response = self.http.put(self.url(Service.DELIVERY, f"/inventory/{sku}"), json={"on_hand": on_hand})
        assert response.status_code == 200, response.text
        return sku

    def checkout_body(
        self, lines: list[tuple[str, int]], card: str = "tok_visa", price: int = 1250
    ) -> dict[str, Any]:
        return {
            "customer_id": "cust-1",
            "currency": "EUR",
            "payment_method": card,
            "lines": [{"sku": sku, "quantity": qty, "unit_price_minor": price} for sku, qty in lines],
            "shipping_address": self.ADDRESS,
        }

    def checkout(
        self, lines: list[tuple[str, int]], card: str = "tok_visa", key: str | None = None
    ) -> dict[str, Any]:
        response = self.http.post(
            self.url(Service.PAYMENT, "/checkout"),
            json=self.checkout_body(lines, card),
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.http.get(self.url(Service.ORDER, f"/orders/{order_id}"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for(self, order_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = self.http.get(self.url(Service.ORDER, f"/orders/{order_id}"))
            if response.status_code == 200:
                last = response.json()
                if last["status"] in statuses:
                    return last
            time.sleep(0.1)
        raise AssertionError(f"order {order_id} did not reach {statuses}; last seen: {last}")

    def wait_for_shipment(self, order_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            response = self.http.get(self.url(Service.DELIVERY, f"/shipments/{order_id}"))
            last = response.json()
            if response.status_code == 200 and last["status"] == status:
                return dict(last)
            time.sleep(0.1)
        raise AssertionError(f"shipment {order_id} did not reach {status}; last seen: {last}")

    def payment(self, order_id: str) -> dict[str, Any]:
        response = self.http.get(self.url(Service.PAYMENT, f"/payments/{order_id}"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def inventory(self, sku: str) -> dict[str, Any]:
        return dict(self.http.get(self.url(Service.DELIVERY, f"/inventory/{sku}")).json())

    def ship_and_deliver(self, order_id: str) -> None:
        self.wait_for(order_id, "SCHEDULED")
        for step in CARRIER_STEPS:
            response = self.http.post(self.url(Service.DELIVERY, f"/shipments/{order_id}/{step}"))
            assert response.status_code == 200, response.text


@pytest.fixture()
def shop(platform: Platform) -> Iterator[Shop]:
    client = Shop(platform)
    yield client
    client.http.close()


def log_dir(platform: Platform) -> Path:
    return next(iter(platform.processes.values())).log_path.parent
