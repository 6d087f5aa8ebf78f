"""API keys on the running platform, probed as an attacker would: no key, someone else's key, a key of
the wrong scope, an oversized body; then a key rotated and revoked without a restart, an Idempotency-Key
another shop cannot replay, and a service that refuses to start with no keys at all.

The keys are the local stack's demo keys (one a scope, `<state>/api-keys/`, what `saga run` prints);
the rotation adds and removes entries in that same file, as an operator would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.auth import Scope, entry_for, new_key
from common.config import Service
from common.openapi import MAX_BODY_BYTES
from saga_tools.local_stack.local_api_keys import LocalApiKeys
from saga_tools.local_stack.ports import free_port
from saga_tools.local_stack.stack import LocalStack
from saga_tools.supervisor import ServiceProcess
from tests.e2e.conftest import Platform, Shop
from tests.keys import suite_headers
from tests.unit.test_who_may_call_what import PUBLIC, WHO_MAY_CALL

PAY, ORD, DLV = Service.PAYMENT, Service.ORDER, Service.DELIVERY
SERVICE_OF_PATH = {
    "/checkout": PAY,
    "/payments": PAY,
    "/orders": ORD,
    "/inventory": DLV,
    "/shipments": DLV,
}
FILLED = {
    "{order_id}": "o-probe-1",
    "{sku}": "SKU-PROBE",
    "{dead_letter_id}": "1",
    "{webhook_id}": "00000000-0000-4000-8000-000000000001",
}


def _target(operation: str) -> tuple[Service, str, str]:
    """The service, method and a concrete path of `operation` (shared routes: asked of order)."""
    method, path = operation.split(" ", 1)
    service = next((s for prefix, s in SERVICE_OF_PATH.items() if path.startswith(prefix)), ORD)
    for placeholder, value in FILLED.items():
        path = path.replace(placeholder, value)
    return service, method, path


PROTECTED = sorted(operation for operation, who in WHO_MAY_CALL.items() if who != PUBLIC)
REFUSED = [
    pytest.param(operation, scope, id=f"{scope}-{operation}")
    for operation in PROTECTED
    for scope in sorted(set(Scope) - {Scope(s) for s in WHO_MAY_CALL[operation]})
]
ALLOWED = [
    pytest.param(operation, Scope(scope), id=f"{scope}-{operation}")
    for operation in PROTECTED
    for scope in sorted(WHO_MAY_CALL[operation])
]


@pytest.fixture(scope="module")
def local_keys(local_stack: LocalStack) -> LocalApiKeys:
    assert local_stack.api_keys is not None, "the test stack makes its demo keys"
    return local_stack.api_keys


@pytest.fixture(scope="module")
def demo_keys(local_keys: LocalApiKeys) -> dict[Scope, str]:
    """A key of each scope: the demo callers', and the order service's own for payment-lookup."""
    return {**local_keys.demo_keys(), Scope.PAYMENT_LOOKUP: local_keys.key("order-service")}


def _call(platform: Platform, operation: str, key: str | None, **kwargs: Any) -> httpx.Response:
    service, method, path = _target(operation)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, platform.url(service) + path, headers=headers, timeout=15, **kwargs)


@pytest.mark.parametrize("operation", PROTECTED)
def test_without_a_key_or_with_an_unknown_one_every_protected_operation_answers_401(
    platform: Platform, operation: str
) -> None:
    for key in (None, new_key(), "Basic-not-bearer"):
        answer = _call(platform, operation, key)

        assert answer.status_code == 401, (key, answer.text)
        assert answer.json()["error"] == "unauthenticated"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", [b"Bearer \xfe\xff", b"Bearer saga_\xc3", b"Bearer a b", b"Bearer", b"\xff"], ids=repr
)
def test_an_authorization_header_that_is_no_token_is_a_401_never_a_500(
    platform: Platform, header: bytes
) -> None:
    """Found by the long fuzzing run (RELIABILITY.md): bytes that are not UTF-8 once made a 500."""
    answer = httpx.post(f"{platform.url(PAY)}/checkout", headers={"Authorization": header}, timeout=15)

    assert answer.status_code == 401, answer.text


@pytest.mark.parametrize(("operation", "scope"), REFUSED)
def test_a_key_without_the_operations_scope_answers_403(
    platform: Platform, demo_keys: dict[Scope, str], operation: str, scope: Scope
) -> None:
    answer = _call(platform, operation, demo_keys[scope])

    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "forbidden"


@pytest.mark.parametrize(("operation", "scope"), ALLOWED)
def test_a_key_with_the_operations_scope_gets_past_authorisation(
    platform: Platform, demo_keys: dict[Scope, str], operation: str, scope: Scope
) -> None:
    answer = _call(platform, operation, demo_keys[scope])

    assert answer.status_code not in (401, 403), answer.text


def test_a_refused_checkout_charges_nothing_and_creates_no_order(
    platform: Platform, shop: Shop, demo_keys: dict[Scope, str]
) -> None:
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    body = {**shop.checkout_body([("SKU-PROBE", 1)]), "order_id": order_id}
    for key in (None, demo_keys[Scope.OPERATOR], demo_keys[Scope.CARRIER]):
        headers = {"Idempotency-Key": uuid.uuid4().hex, **(_bearer(key) if key else {})}
        answer = httpx.post(f"{platform.url(PAY)}/checkout", json=body, headers=headers, timeout=15)
        assert answer.status_code in (401, 403), answer.text

    assert shop.http.get(shop.url(PAY, f"/payments/{order_id}")).status_code == 404
    assert shop.http.get(shop.url(ORD, f"/orders/{order_id}")).status_code == 404


def test_metrics_need_the_operator_scope(platform: Platform, demo_keys: dict[Scope, str]) -> None:
    url = f"{platform.url(ORD)}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers=_bearer(demo_keys[Scope.SHOP]), timeout=10).status_code == 403
    scraped = httpx.get(url, headers=_bearer(demo_keys[Scope.OPERATOR]), timeout=10)
    assert scraped.status_code == 200 and "saga_" in scraped.text


def test_health_readiness_and_the_document_need_no_key(platform: Platform) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        answer = httpx.get(platform.url(PAY) + path, timeout=10)
        assert answer.status_code == 200, (path, answer.text)
    assert httpx.get(platform.url(PAY) + "/readyz", timeout=10).json()["authentication"] == "on"


def test_a_body_over_the_limit_is_413_and_a_cart_over_100_lines_422_and_neither_creates_an_order(
    platform: Platform, shop: Shop
) -> None:
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    url = shop.url(PAY, "/checkout")
    too_large = shop.http.post(
        url,
        content=b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}',
        headers={"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"},
    )
    assert too_large.status_code == 413 and too_large.json()["error"] == "body_too_large"
    many = {**shop.checkout_body([(f"SKU-{i}", 1) for i in range(101)]), "order_id": order_id}
    too_many = shop.http.post(url, json=many, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert too_many.status_code == 422 and "lines" in too_many.text

    assert shop.http.get(shop.url(PAY, f"/payments/{order_id}")).status_code == 404


@pytest.fixture()
def keys_file(local_keys: LocalApiKeys) -> Iterator[Path]:
    """The services' keys file, put back as it was after the test."""
    path = local_keys.entries_file
    before = path.read_text()
    yield path
    path.write_text(before)
    time.sleep(1.5)  # the services read it again within a second


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the services did not take the keys file's change"
        time.sleep(0.2)


def test_a_key_is_rotated_and_revoked_by_editing_the_keys_file_without_a_restart(
    platform: Platform, keys_file: Path
) -> None:
    url = f"{platform.url(ORD)}/orders?limit=1"
    old, new = new_key(), new_key()
    keys_file.write_text(keys_file.read_text() + entry_for("acme", [Scope.SHOP], old).line() + "\n")
    _until(lambda: httpx.get(url, headers=_bearer(old), timeout=10).status_code == 200)

    # Both keys of acme are active while its backends move to the new one...
    keys_file.write_text(keys_file.read_text() + entry_for("acme", [Scope.SHOP], new).line() + "\n")
    _until(lambda: httpx.get(url, headers=_bearer(new), timeout=10).status_code == 200)
    assert httpx.get(url, headers=_bearer(old), timeout=10).status_code == 200

    # ...then the old one is removed, and refused by every service.
    revoked = entry_for("acme", [Scope.SHOP], old).line()
    keys_file.write_text(
        "".join(f"{line}\n" for line in keys_file.read_text().splitlines() if line != revoked)
    )
    _until(lambda: httpx.get(url, headers=_bearer(old), timeout=10).status_code == 401)
    for service in Service:
        assert httpx.get(f"{platform.url(service)}/openapi.json", timeout=10).status_code == 200
        probe = "/orders?limit=1" if service is ORD else "/payments/x" if service is PAY else "/inventory"
        answer = httpx.get(platform.url(service) + probe, headers=_bearer(old), timeout=10)
        assert answer.status_code == 401, (service, answer.text)
        answer = httpx.get(platform.url(service) + probe, headers=_bearer(new), timeout=10)
        assert answer.status_code not in (401, 403), (service, answer.text)


def test_another_shops_key_can_neither_read_nor_replay_a_checkouts_idempotency_key(
    platform: Platform, shop: Shop, keys_file: Path, demo_keys: dict[Scope, str]
) -> None:
    rival = new_key()
    keys_file.write_text(keys_file.read_text() + entry_for("rival-shop", [Scope.SHOP], rival).line() + "\n")
    sku = shop.stock(5)
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    body = {**shop.checkout_body([(sku, 1)]), "order_id": order_id}
    idempotency = {"Idempotency-Key": f"checkout-{uuid.uuid4().hex}"}
    url = shop.url(PAY, "/checkout")
    first = httpx.post(url, json=body, headers={**idempotency, **_bearer(demo_keys[Scope.SHOP])}, timeout=15)
    assert first.status_code == 202, first.text
    _until(
        lambda: httpx.get(shop.url(PAY, "/payments/x"), headers=_bearer(rival), timeout=10).status_code == 404
    )

    replayed_by_rival = httpx.post(url, json=body, headers={**idempotency, **_bearer(rival)}, timeout=15)
    replayed_by_owner = httpx.post(
        url, json=body, headers={**idempotency, **_bearer(demo_keys[Scope.SHOP])}, timeout=15
    )

    # The rival's request is its own checkout of its own order (order ids are each shop's own): it never
    # sees the first answer (payment id, status).
    assert replayed_by_rival.status_code == 202, replayed_by_rival.text
    assert first.json()["payment_id"] not in replayed_by_rival.text
    assert replayed_by_owner.status_code == 202 and replayed_by_owner.json() == first.json()
    for owner in ("demo-shop", "rival-shop"):  # the platform is shared: leave no saga waiting for the carrier
        shop.ship_and_deliver(f"{owner}:{order_id}")
        shop.wait_for(f"{owner}:{order_id}", "COMPLETED")


def test_a_keys_file_that_breaks_lets_no_key_of_it_in_and_readiness_says_why(
    platform: Platform, keys_file: Path, demo_keys: dict[Scope, str]
) -> None:
    url, ready = f"{platform.url(ORD)}/orders?limit=1", f"{platform.url(ORD)}/readyz"
    operator = suite_headers()  # from SAGA_API_KEYS, not the file: it stays valid
    shop_key = _bearer(demo_keys[Scope.SHOP])
    assert httpx.get(url, headers=shop_key, timeout=10).status_code == 200

    keys_file.write_text(keys_file.read_text() + "a line that is no entry\n")  # one bad line

    _until(lambda: httpx.get(url, headers=shop_key, timeout=10).status_code == 401)
    _until(lambda: httpx.get(ready, timeout=10).json()["checks"]["api_keys"] == "failed")
    why = httpx.get(ready, headers=operator, timeout=10).json()["checks"]["api_keys"]
    assert why.startswith("failed: ") and "entry" in why, why
    assert httpx.get(url, headers=operator, timeout=10).status_code == 200


def _service_alone(platform: Platform, tmp_path: Path, **changes: str | None) -> ServiceProcess:
    env = {**platform.environment, f"{DLV.value.upper()}_HTTP_PORT": str(free_port())}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    port = env[f"{DLV.value.upper()}_HTTP_PORT"]
    env.pop("DELIVERY_URL", None)
    return ServiceProcess(
        DLV, env=env, log_path=tmp_path / "delivery.log", base_url=f"http://127.0.0.1:{port}"
    )


def test_a_service_with_no_keys_refuses_to_start_saying_how_to_configure_them(
    platform: Platform, tmp_path: Path
) -> None:
    process = _service_alone(platform, tmp_path, SAGA_API_KEYS=None, SAGA_API_KEYS_FILE=None)
    process.start()
    try:
        deadline = time.monotonic() + 60
        while process.running:
            assert time.monotonic() < deadline, "the service started with no keys"
            time.sleep(0.2)
    finally:
        process.kill()
    log = process.log_path.read_text()
    assert "no API keys are configured" in log and "SAGA_API_KEYS_FILE" in log


def test_with_authentication_turned_off_a_service_says_so_at_start_and_on_readyz(
    platform: Platform, tmp_path: Path
) -> None:
    process = _service_alone(
        platform, tmp_path, SAGA_API_KEYS=None, SAGA_API_KEYS_FILE=None, SAGA_DISABLE_AUTHENTICATION="true"
    )
    process.start()
    try:
        process.wait_ready(timeout=90)
        ready = httpx.get(f"{process.base_url}/readyz", timeout=10).json()
        inventory = httpx.get(f"{process.base_url}/inventory", timeout=10)
    finally:
        process.stop()
    assert ready["authentication"] == "off"
    assert inventory.status_code == 200  # no key needed: that is what the setting does
    assert "AUTHENTICATION IS OFF" in process.log_path.read_text()


def test_public_metrics_open_metrics_alone_to_a_scraper_without_a_key(
    platform: Platform, tmp_path: Path
) -> None:
    process = _service_alone(platform, tmp_path, SAGA_PUBLIC_METRICS="true")
    process.start()
    try:
        process.wait_ready(timeout=90)
        metrics = httpx.get(f"{process.base_url}/metrics", timeout=10)
        inventory = httpx.get(f"{process.base_url}/inventory", timeout=10)
        ready = httpx.get(f"{process.base_url}/readyz", timeout=10).json()
    finally:
        process.stop()
    assert metrics.status_code == 200 and "saga_" in metrics.text
    assert inventory.status_code == 401  # everything else still needs a key
    assert ready["authentication"] == "on"
