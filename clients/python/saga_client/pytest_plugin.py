"""The pytest plugin (entry point `saga`, installed with `saga-client[pytest]`): a shop's integration
tests on the real platform — Kafka, PostgreSQL and the three services.

Fixtures:
- `saga_platform` (session): the platform. Started here when the platform is installed beside the
  client (the local stack, the services on free ports, `saga_platform_settings` applied), or the one
  already running that SAGA_PAYMENT_URL, SAGA_ORDER_URL, SAGA_DELIVERY_URL (and SAGA_BOOTSTRAP_SERVERS)
  name, or the ini options of the same names in lower case (`saga_client.testing.settings`).
- `saga`: a `SagaClient` of it; every checkout it sends is recorded for `assert_saga_consistent`.
- `saga_stock`: `saga_stock(on_hand)` → a SKU unique to the test, with that stock.
- `saga_events`: the events published on the three topics during the test.
- `saga_carrier`: `deliver(order_id)` / `ship(order_id)`, whether or not the platform auto-progresses.
- `saga_webhooks`: a webhook receiver on 127.0.0.1 subscribed for the test shop to every event type
  (deleted after the test): what arrived, verified; `wait_for`, `assert_in_order`, `assert_all_verified`;
  `fail` / `hang` / `answer_normally` (`saga_client.testing.webhooks`).
- `saga_faults`: kill, restart and pause services and the broker; crash or freeze the database
  (`with saga_faults.database_down():`, `database_paused()`); cut one service off from the broker
  (`with saga_faults.cut_off_from_broker("order"):`). Only on a platform started here (otherwise the
  test is skipped, saying why); everything is mended after the test (`saga_client.testing.faults`).
- `assert_saga_consistent`: `assert_saga_consistent()` waits until the test's sagas ended and checks
  the invariants through the public APIs (`saga_client.checker`).

API keys: each call sends the key of its role (`saga_client.operations`). A platform started here makes
a demo key per role and the clients carry them. For a running platform they come from SAGA_API_KEY (the
shop's, and every role's without its own), SAGA_CARRIER_API_KEY and SAGA_OPERATOR_API_KEY; a fixture
whose role has no key fails at setup naming the variable: `saga` needs the shop's, `saga_stock` and
`assert_saga_consistent` the operator's, `saga_carrier` the carrier's.

A service of a platform started here that died during a test (not by `saga_faults`) fails the test,
with the tail of its log, and is started again for the next one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from saga_client.checker import wait_until_consistent
from saga_client.client import SagaClient
from saga_client.config import Role, api_keys_from_env
from saga_client.errors import NotFound, SagaError, ValidationFailed
from saga_client.testing.carrier import Carrier
from saga_client.testing.events import EventRecorder, SagaEvents
from saga_client.testing.faults import Faults
from saga_client.testing.ledger import Ledger
from saga_client.testing.local import LocalPlatform, PlatformStartError
from saga_client.testing.platform import (
    MissingApiKey,
    PlatformUnreachable,
    SagaPlatform,
    connect,
    start_local,
)
from saga_client.testing.settings import (
    INI_OPTIONS,
    PlatformSettings,
    SettingsError,
    running_platform_address,
)
from saga_client.testing.stock import StockFactory
from saga_client.testing.webhooks import SagaWebhooks

PLATFORM = pytest.StashKey[SagaPlatform]()
CheckConsistency = Callable[..., None]


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, help_text in INI_OPTIONS.items():
        parser.addini(name, help_text, default="")


def _ini(config: pytest.Config) -> Callable[[str], str]:
    return lambda name: str(config.getini(name) or "")


@pytest.fixture(scope="session")
def saga_platform_settings(pytestconfig: pytest.Config) -> PlatformSettings:
    """How the plugin starts the platform (from the ini options); override it in a conftest to change."""
    return PlatformSettings.from_ini(_ini(pytestconfig))


@pytest.fixture(scope="session")
def saga_platform(
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    saga_platform_settings: PlatformSettings,
) -> Iterator[SagaPlatform]:
    """The platform of the session: the running one the settings name, or one started here."""
    try:
        address = running_platform_address(os.environ, _ini(pytestconfig))
    except SettingsError as error:
        pytest.fail(f"saga platform: {error}", pytrace=False)
    if address is not None:
        try:
            platform = connect(address, api_keys_from_env(os.environ))
        except PlatformUnreachable as error:
            pytest.fail(f"saga platform: {error}", pytrace=False)
        pytestconfig.stash[PLATFORM] = platform
        yield platform
        return
    local = LocalPlatform(tmp_path_factory.mktemp("saga-platform"), saga_platform_settings, os.environ)
    try:
        platform = start_local(local)
    except PlatformStartError as error:
        pytest.fail(str(error), pytrace=False)
    pytestconfig.stash[PLATFORM] = platform
    try:
        yield platform
    finally:
        local.stop()


def _require(platform: SagaPlatform, fixture: str, *roles: Role) -> None:
    """Fail the fixture's setup, naming the variable to set, unless the session has the roles' keys."""
    try:
        platform.require(f"the fixture {fixture}", *roles)
    except MissingApiKey as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def _saga_session_ledger() -> Ledger:
    return Ledger()


@pytest.fixture()
def saga_ledger(_saga_session_ledger: Ledger) -> Ledger:
    """The checkouts and SKUs of this test (also added to the session's)."""
    return Ledger(parent=_saga_session_ledger)


@pytest.fixture()
def saga(saga_platform: SagaPlatform, saga_ledger: Ledger) -> Iterator[SagaClient]:
    """A client of the session's platform, sending each call's role's key; its checkouts are recorded
    for `assert_saga_consistent`."""
    _require(saga_platform, "saga", Role.SHOP)
    with SagaClient(saga_platform.client_config(), on_checkout=saga_ledger.record_checkout) as client:
        yield client


@pytest.fixture()
def saga_stock(
    saga_platform: SagaPlatform, saga: SagaClient, saga_ledger: Ledger, request: pytest.FixtureRequest
) -> StockFactory:
    """`saga_stock(on_hand=10)` → the name of a new SKU with that many units, unique to this test (set
    with the operator's key)."""
    _require(saga_platform, "saga_stock", Role.OPERATOR)
    return StockFactory(saga, request.node.name, saga_ledger.record_sku)


@pytest.fixture()
def saga_carrier(saga_platform: SagaPlatform, saga: SagaClient) -> Carrier:
    """The carrier's steps, sent with the carrier's key."""
    _require(saga_platform, "saga_carrier", Role.CARRIER)
    return Carrier(saga)


@pytest.fixture(scope="session")
def _saga_event_recorder(saga_platform: SagaPlatform) -> Iterator[EventRecorder]:
    if not saga_platform.bootstrap_servers:
        pytest.skip("saga_events needs the broker of the running platform: set SAGA_BOOTSTRAP_SERVERS")
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        pytest.fail("saga_events reads Kafka with aiokafka: pip install 'saga-client[pytest]'", pytrace=False)
    recorder = EventRecorder(saga_platform.bootstrap_servers)
    try:
        recorder.start()
    except RuntimeError as error:
        pytest.fail(f"saga_events: {error}", pytrace=False)
    yield recorder
    recorder.stop()


@pytest.fixture()
def saga_events(_saga_event_recorder: EventRecorder) -> SagaEvents:
    """The events published on the topics `payment`, `order` and `delivery` since the test began."""
    return SagaEvents(_saga_event_recorder)


@pytest.fixture()
def saga_webhooks(saga_platform: SagaPlatform, saga: SagaClient) -> Iterator[SagaWebhooks]:
    """A webhook receiver on 127.0.0.1 and a free port, subscribed with the shop's key to every event type
    of its orders; the endpoint is deleted after the test (a failure to delete it is a warning naming
    it). The platform must run on this machine and allow loopback URLs (the plugin's and `saga run` do)."""
    _require(saga_platform, "saga_webhooks", Role.SHOP)
    receiver = SagaWebhooks().start()
    refused: str | None = None
    try:
        receiver.subscribe(saga)
    except NotFound as error:
        refused = f"the order service has no /webhooks (an older platform?): {error}"
    except ValidationFailed as error:
        refused = (
            f"the platform refused {receiver.url} as an endpoint ({error}); a platform on this machine must"
            " allow loopback URLs: WEBHOOK_ALLOW_LOCAL_URLS=true"
        )
    except BaseException:
        receiver.stop()
        raise
    if refused is not None:  # failed outside the except blocks: the message alone, no chained traceback
        receiver.stop()
        pytest.fail(f"saga_webhooks: {refused}", pytrace=False)
    yield receiver
    endpoint = receiver.endpoint
    try:
        receiver.unsubscribe()
    except SagaError as error:
        # The test's outcome stands; the endpoint left behind is named so that it can be deleted.
        warnings.warn(
            f"saga_webhooks: could not delete the endpoint {endpoint.id if endpoint else '?'}: {error}",
            stacklevel=1,
        )
    finally:
        receiver.stop()


@pytest.fixture()
def saga_faults(saga_platform: SagaPlatform) -> Iterator[Faults]:
    """Fault hooks on a platform the plugin started (services, broker, database, the services' links to
    the broker); mended after the test, whatever it left broken."""
    if saga_platform.local is None:
        pytest.skip(
            "saga_faults needs a platform the plugin started; this session runs against "
            f"{saga_platform.urls[next(iter(saga_platform.urls))]}, whose processes are not the plugin's"
        )
    faults = Faults(saga_platform.local)
    yield faults
    faults.heal()


@pytest.fixture()
def assert_saga_consistent(
    saga_platform: SagaPlatform, saga_ledger: Ledger, _saga_session_ledger: Ledger
) -> CheckConsistency:
    """`assert_saga_consistent(timeout=30, scope="test")`: wait until every checkout of the test (or of
    the session) ended, then check the invariants (`saga_client.checker`) through the public APIs: the
    orders, payments and shipments as the shop that made them (a shop sees its own by its own ids),
    stock and dead letters as the operator (they are the operator's to read)."""
    _require(saga_platform, "assert_saga_consistent", Role.SHOP, Role.OPERATOR)

    def check(*, timeout: float = 30.0, scope: str = "test") -> None:
        ledger = _saga_session_ledger if scope == "session" else saga_ledger
        with saga_platform.client() as client:
            report = wait_until_consistent(client, ledger.checkouts, ledger.skus, timeout=timeout)
        if not report.consistent:
            pytest.fail(
                f"saga inconsistent after {timeout:g}s ({len(report.statuses)} orders: {report.summary()};"
                f" {len(ledger.skus)} SKUs):\n- " + "\n- ".join(report.violations),
                pytrace=False,
            )

    return check


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    platform = item.config.stash.get(PLATFORM, None)
    if report.when != "call" or platform is None or platform.local is None:
        return report
    died = platform.local.died()
    if died:
        text = "\n".join(
            f"the {service.value} service died during the test; the end of its log"
            f" ({platform.local.log_path(service)}):\n{tail}"
            for service, tail in died.items()
        )
        report.sections.append(("saga platform", text))
        if report.passed:
            report.outcome = "failed"
            report.longrepr = text
        for service in died:
            platform.local.restart(service)
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    platform = config.stash.get(PLATFORM, None)
    if platform is not None:
        terminalreporter.write_line(platform.describe())
