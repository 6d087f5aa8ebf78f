"""The saga console in a real headless browser: Debian's chromium, driven by selenium, on the e2e platform.

It reuses the session's platform (the `platform` fixture: no second Kafka or PostgreSQL) and runs the
console as `saga run` does, as its own process. An operator signs in with the operator key (a wrong key is
refused), opens an order stuck behind a parked event, reads why it was parked, gives up on the unreadable
event and re-drives the real ones behind it, and watches the order complete on the same page, without a
reload: a marker set in the page's JavaScript survives until the end. The screenshots the README and
docs/operators/console.md show are taken here: into the platform's log directory, or over
docs/images/console-*.png when SAGA_SCREENSHOTS_TO_DOCS=1 (so a test run leaves the work tree as it was).

Without chromium or chromedriver (Debian's `chromium` and `chromium-driver`) the module is skipped, and
says why.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.config import Service
from common.span_store import SpanReceiver
from saga_tools.local_stack.ports import free_port
from saga_tools.supervisor import CONSOLE, ServiceProcess
from tests.carrier_steps import CARRIER_STEPS, STEP_EVENTS
from tests.chaos.harness import produce_raw
from tests.e2e.conftest import Platform, Shop, log_dir
from tests.e2e.test_traces import trace_with, traced_checkout
from tests.keys import SUITE_SHOP, shop_keys, suite_key

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
MARKER = "the same document since the operator opened the order"


def _missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver;"
            " .ci/run installs them when it can)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    return None


MISSING = _missing_browser()
if MISSING is not None:
    print(f"\ntests/e2e/test_console.py skipped: {MISSING}")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="module")
def console_url(platform: Platform) -> Iterator[str]:
    """The console as its own process next to the platform's services, as `saga run` starts it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        CONSOLE,
        env={**platform.environment, "CONSOLE_HTTP_PORT": str(port), "CONSOLE_TRACES": "true"},
        log_path=log_dir(platform) / f"{CONSOLE}.log",
        base_url=url,
    )
    process.start()
    try:
        process.wait_ready(timeout=30)
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    options = Options()
    options.binary_location = str(shutil.which("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=DriverService(str(shutil.which("chromedriver"))), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(browser: Any, platform: Platform, name: str) -> None:
    """Save what the browser shows as console-<name>.png, where the module docstring says."""
    images = DOCS_IMAGES if os.environ.get("SAGA_SCREENSHOTS_TO_DOCS") == "1" else log_dir(platform)
    images.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(images / f"console-{name}.png"))


def wait_until(browser: Any, condition: Any, timeout: float = 30, what: str = "") -> Any:
    """Wait for `condition`. The page's parts are swapped in every few seconds (htmx polling), so an
    element a condition found may be replaced before it is read: that reading is retried, not failed."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(
        browser,
        timeout,
        poll_frequency=0.2,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    return waiting.until(condition, what)


def text_of(browser: Any, selector: str) -> str:
    """The rendered text of the first element `selector` finds, "" when there is none. Found and read in
    one script, so a swap between finding and reading cannot leave a stale element."""
    text = browser.execute_script(
        "const found = document.querySelector(arguments[0]); return found ? found.innerText : '';",
        selector,
    )
    return str(text).strip()


def click(browser: Any, selector: str, timeout: float = 15) -> None:
    """Click the element `selector` finds. The page's parts are swapped in every few seconds (htmx
    polling), so an element found a moment ago may be gone: find it again and retry."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        try:
            browser.find_element(By.CSS_SELECTOR, selector).click()
            return
        except (StaleElementReferenceException, NoSuchElementException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def sign_in(browser: Any, console_url: str, key: str) -> None:
    """Submit the sign-in form with `key` and return once the console's answer has replaced the form's
    page: a click starts the submission but need not wait for it, and a caller reading the page at once
    would read the form it just submitted."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    browser.get(f"{console_url}/sign-in")
    form_page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, "api_key").send_keys(key)
    browser.find_element(By.ID, "sign-in").click()
    wait_until(browser, expected_conditions.staleness_of(form_page), what="the answer to the sign-in form")


def park_behind_an_unreadable_event(platform: Platform, order_id: str) -> None:
    """An unreadable Shipped (a version no service knows) of this order on the delivery topic: the
    order service parks it, and the order's later delivery events park behind it."""
    saga = f"{SUITE_SHOP}:{order_id}"
    poison = {
        "event_id": str(uuid.uuid4()),
        "type": "Shipped",
        "version": 99,
        "order_id": saga,
        "occurred_at": "2026-01-01T00:00:00Z",
        "producer": "delivery",
        "payload": {},
    }
    asyncio.run(produce_raw(platform.bootstrap, [("delivery", saga.encode(), json.dumps(poison).encode())]))


def parked_types(shop: Shop, order_id: str) -> list[str]:
    url = shop.url(Service.ORDER, "/dead-letters")
    items = shop.http.get(url, params={"order_id": f"{SUITE_SHOP}:{order_id}"}).json()["items"]
    return [letter["event_type"] for letter in items]


def test_a_wrong_key_or_a_key_without_the_operator_scope_is_refused(
    browser: Any, console_url: str, platform: Platform
) -> None:
    sign_in(browser, console_url, "not-a-key")
    assert "do not know this key" in text_of(browser, "#sign-in-error")
    screenshot(browser, platform, "sign-in-refused")
    shop_key = next(iter(shop_keys().values()))
    sign_in(browser, console_url, shop_key)
    assert "no operator scope" in text_of(browser, "#sign-in-error")
    browser.get(f"{console_url}/")
    assert browser.current_url.endswith("/sign-in")  # still nothing to see


def test_an_operator_redrives_a_saga_stuck_behind_a_parked_event_and_watches_it_complete_in_place(
    browser: Any, console_url: str, shop: Shop, platform: Platform
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions

    started = time.monotonic()
    sku = shop.stock(4)
    order_id = shop.checkout([(sku, 1)])["order_id"]
    shop.wait_for(order_id, "SCHEDULED")
    park_behind_an_unreadable_event(platform, order_id)
    for step in CARRIER_STEPS:  # the carrier goes on; the order service cannot follow
        assert shop.http.post(shop.url(Service.DELIVERY, f"/shipments/{order_id}/{step}")).status_code == 200
    deadline = time.monotonic() + 30
    while parked_types(shop, order_id)[1:] != list(STEP_EVENTS):  # behind the unreadable one
        assert time.monotonic() < deadline, parked_types(shop, order_id)
        time.sleep(0.2)

    sign_in(browser, console_url, suite_key())
    wait_until(browser, expected_conditions.url_to_be(f"{console_url}/"), what="signed in to the overview")
    wait_until(
        browser, lambda b: text_of(b, "#service-order .ok") == "ready", what="order ready on the overview"
    )
    assert "SCHEDULED" in text_of(browser, "#live .counts")
    # Throughput is the growth between two of the page's own readings: the next refresh shows it.
    wait_until(
        browser,
        lambda b: text_of(b, "#service-order .throughput").endswith("/s"),
        what="events applied per second on the overview",
    )
    assert text_of(browser, "#service-order .lag").isdigit()
    screenshot(browser, platform, "overview")

    # The operator opens the order by its name, shop:order_id, and reads why it stopped.
    name = f"{SUITE_SHOP}:{order_id}"
    search = browser.find_element(By.NAME, "q")
    search.send_keys(name, Keys.ENTER)
    wait_until(browser, lambda b: "SCHEDULED" in text_of(b, "#order-status"), what="the story page")
    parked = text_of(browser, "#parked")
    assert "newer than" in parked or "version" in parked, parked  # why the first event was parked
    assert "waiting behind" in parked
    browser.execute_script("window.consoleMarker = arguments[0];", MARKER)
    screenshot(browser, platform, "order-parked")

    # The unreadable event is given up on; the carrier's first real event behind it becomes the head and
    # is retried.
    first = "#parked tr.letter:first-child"
    poison = wait_until(
        browser, lambda b: b.find_element(By.CSS_SELECTOR, first).get_attribute("data-letter")
    )
    click(browser, f"{first} button[data-action=discard]")
    wait_until(browser, expected_conditions.alert_is_present(), what="the discard is confirmed")
    browser.switch_to.alert.accept()
    wait_until(
        browser,
        lambda b: (
            f'data-letter="{poison}"' not in b.page_source
            and b.find_elements(By.CSS_SELECTOR, "#parked button[data-action=retry]")
        ),
        what="the discarded event gone, the next one retryable",
    )
    click(browser, "#parked button[data-action=retry]")
    wait_until(browser, lambda b: "COMPLETED" in text_of(b, "#order-status"), what="the order completes")
    assert not browser.find_elements(By.CSS_SELECTOR, "#parked")

    # Never reloaded: the marker set in this document is still there.
    assert browser.execute_script("return window.consoleMarker;") == MARKER
    assert browser.current_url == f"{console_url}/orders/{name}"
    screenshot(browser, platform, "order-completed")
    assert shop.order(order_id)["status"] == "COMPLETED"
    print(f"\nconsole browser test: {time.monotonic() - started:.1f} s")


def test_an_order_page_draws_the_sagas_trace_across_the_three_services(
    browser: Any, console_url: str, shop: Shop, span_receiver: SpanReceiver, platform: Platform
) -> None:
    """The suite's services send their spans to the suite's receiver; handed on to the console as they
    were exported (as `saga run`'s services send them to the console itself), the order page draws them."""
    import httpx
    from selenium.webdriver.common.by import By

    order_id, _, _ = traced_checkout(shop, shop.stock(2))
    shop.ship_and_deliver(order_id)
    shop.wait_for(order_id, "COMPLETED")
    name = f"{SUITE_SHOP}:{order_id}"
    trace_with(span_receiver, name, {("order", "order process Delivered")})
    for export in list(span_receiver.exports):
        assert httpx.post(f"{console_url}/v1/traces", content=export, timeout=10).status_code == 200

    browser.get(f"{console_url}/orders/{name}")
    if browser.current_url.endswith("/sign-in"):  # not signed in yet when this test runs alone
        sign_in(browser, console_url, suite_key())
        browser.get(f"{console_url}/orders/{name}")
    wait_until(browser, lambda b: b.find_elements(By.ID, "trace"), what="the trace on the order page")
    trace = text_of(browser, "#trace")
    for span in ("POST /checkout", "order process PaymentCompleted", "delivery process OrderPlaced"):
        assert span in trace, trace
    browser.execute_script("document.getElementById('trace').scrollIntoView();")
    screenshot(browser, platform, "trace")
