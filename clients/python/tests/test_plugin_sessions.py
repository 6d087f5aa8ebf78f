"""Whole test sessions of a shop's suite, run by `pytester`: against a platform the plugin
did not start, and the failures a suite must see clearly (an unreachable URL, no Java, a crashed service)."""

from __future__ import annotations

import socket

import pytest

from saga_client.config import KEY_VARIABLES
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


def point_at(
    monkeypatch: pytest.MonkeyPatch,
    urls: dict[str, str],
    bootstrap: str | None = None,
    keys: dict[str, str] | None = None,
) -> None:
    """The inner session's environment: these URLs, this broker, and these key variables (no other)."""
    for service, url in urls.items():
        monkeypatch.setenv(f"SAGA_{service.upper()}_URL", url)
    if bootstrap:
        monkeypatch.setenv("SAGA_BOOTSTRAP_SERVERS", bootstrap)
    for variable in KEY_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    for variable, key in (keys or {}).items():
        monkeypatch.setenv(variable, key)


def running(saga_platform: SagaPlatform) -> dict[str, str]:
    return {service.value: url for service, url in saga_platform.urls.items()}


def test_a_suite_runs_against_a_platform_it_did_not_start_and_skips_fault_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, saga_platform: SagaPlatform
) -> None:
    keys = {KEY_VARIABLES[role]: key for role, key in saga_platform.api_keys.items()}
    point_at(monkeypatch, running(saga_platform), saga_platform.bootstrap_servers, keys)
    pytester.makepyfile(test_shop=SHOP_TEST)

    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*saga_faults needs a platform the plugin started*"])
    result.stdout.fnmatch_lines(["saga platform (already running): payment http://127.0.0.1:*"])


def test_a_fixture_whose_role_has_no_key_fails_naming_the_variable_to_set(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, saga_platform: SagaPlatform
) -> None:
    """Only the carrier's key is given: `saga` lacks the shop's, the checker the shop's (it reads the
    shop's orders as the shop) and the operator's; a test that needs no key runs."""
    point_at(monkeypatch, running(saga_platform), keys={"SAGA_CARRIER_API_KEY": "saga_carrier-key"})
    pytester.makepyfile(
        test_shop="def test_shop(saga):\n    pass\n\n"
        "def test_checker(assert_saga_consistent):\n    pass\n\n"
        "def test_platform(saga_platform):\n    assert saga_platform.authentication\n"
    )

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    result.assert_outcomes(errors=2, passed=1)
    result.stdout.fnmatch_lines(["*fixture saga needs the API key of the shop role on*: set SAGA_API_KEY"])
    result.stdout.fnmatch_lines(
        [
            "*the fixture assert_saga_consistent needs the API key of the shop and operator role on*: set"
            " SAGA_API_KEY and SAGA_OPERATOR_API_KEY (or SAGA_API_KEY, sent by every role)"
        ]
    )
    assert "saga_carrier-key" not in result.stdout.str()
    result.stdout.fnmatch_lines(["saga platform (already running): *; API keys of carrier"])


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
