"""Whole test sessions of a shop's suite, run by `pytester`: against a platform the plugin
did not start, and the failures a suite must see clearly (an unreachable URL, no Java, a crashed service)."""

from __future__ import annotations

import socket

import pytest

from saga_client.testing import SagaPlatform

SHOP_TEST = """
def test_a_happy_path(saga, saga_stock, saga_carrier, saga_events, assert_saga_consistent):
    accepted = saga.checkout(customer_id="c-1", currency="EUR", payment_method="tok_visa",
                             lines=[(saga_stock(3), 1, 700)],
                             shipping_address={"name": "Ada", "line1": "1 Main St", "city": "Berlin",
                                               "postal_code": "10115", "country": "DE"})
    saga_carrier.deliver(accepted.order_id)
    assert saga.wait_for(accepted.order_id).status == "COMPLETED"
    saga_events.wait_for("OrderCompleted", order_id=accepted.order_id)
    assert_saga_consistent()


def test_a_fault(saga_faults):
    saga_faults.kill("order")
"""


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def point_at(monkeypatch: pytest.MonkeyPatch, urls: dict[str, str], bootstrap: str | None = None) -> None:
    for service, url in urls.items():
        monkeypatch.setenv(f"SAGA_{service.upper()}_URL", url)
    if bootstrap:
        monkeypatch.setenv("SAGA_BOOTSTRAP_SERVERS", bootstrap)


def test_a_suite_runs_against_a_platform_it_did_not_start_and_skips_fault_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, saga_platform: SagaPlatform
) -> None:
    point_at(
        monkeypatch, {s.value: url for s, url in saga_platform.urls.items()}, saga_platform.bootstrap_servers
    )
    pytester.makepyfile(test_shop=SHOP_TEST)

    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*saga_faults needs a platform the plugin started*"])
    result.stdout.fnmatch_lines(["saga platform (already running): payment http://127.0.0.1:*"])


def test_an_unreachable_url_fails_the_session_naming_the_service_and_its_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{unused_port()}"
    point_at(monkeypatch, {"payment": dead, "order": dead, "delivery": dead})
    monkeypatch.setattr("saga_client.testing.platform.time.sleep", lambda _: None)
    pytester.makepyfile(test_shop="def test_it(saga):\n    pass\n")

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*the payment service at {dead} (SAGA_PAYMENT_URL) is unreachable*"])


def test_only_some_urls_is_a_clear_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(monkeypatch, {"payment": "http://127.0.0.1:1"})
    pytester.makepyfile(test_shop="def test_it(saga):\n    pass\n")

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs all three URLs; missing: SAGA_ORDER_URL*SAGA_DELIVERY_URL*"])


def test_no_java_fails_the_session_saying_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-path")))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    pytester.makepyfile(test_shop="def test_it(saga):\n    pass\n")

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*cannot start the saga platform:*", "*`java` is not on PATH: install Java 17+*"]
    )


CRASHING = """
from pathlib import Path

from saga_client.config import Service
from saga_client.pytest_plugin import PLATFORM
from saga_client.testing import SagaPlatform


class CrashedOrderService:
    restarted = []
    state_dir = Path("/state")

    def died(self):
        return {} if self.restarted else {Service.ORDER: "Traceback ...\\nMemoryError: out of memory"}

    def log_path(self, service):
        return f"/logs/{service.value}.log"

    def restart(self, service):
        self.restarted.append(service)


def pytest_configure(config):
    config.stash[PLATFORM] = SagaPlatform(urls={}, bootstrap_servers=None, local=CrashedOrderService())
"""


def test_a_service_that_died_during_a_test_fails_it_with_the_end_of_its_log(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CRASHING)
    pytester.makepyfile(test_shop="def test_first():\n    pass\n\ndef test_second():\n    pass\n")

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(failed=1, passed=1)  # the service is started again for the next test
    result.stdout.fnmatch_lines(
        [
            "*the order service died during the test; the end of its log (/logs/order.log):*",
            "*MemoryError: out of memory*",
        ]
    )
