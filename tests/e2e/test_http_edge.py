"""The HTTP edge of the running services, probed as an unfriendly client would: paths Faust served on its
own, readiness asked without a key, a body nested 600 deep, and 500 connections that never finish (or
never start) a request while a shop checks out.

The limits are the defaults (common/config.py): a new connection has 10 s to send its request head, an
idle one is closed 15 s after its last answer.
"""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from common.config import Service
from common.openapi import MAX_JSON_DEPTH
from common.params import BIGINT_MAX
from tests.e2e.conftest import Platform, Shop

# Faust's built-in views, and where they were: `/assignment/` and `/graph/` with APP_DEBUG.
FAUST_PATHS = [
    "/",
    "/router/",
    "/router/x/",
    "/table/",
    "/table/x/",
    "/assignment/",
    "/graph/",
    "/performance/",
]
# Ids nothing has: a probe of a documented route changes nothing.
FILLED = {
    "{order_id}": "o-edge-probe",
    "{sku}": "SKU-EDGE-PROBE",
    "{dead_letter_id}": str(BIGINT_MAX),
    "{webhook_id}": "00000000-0000-4000-8000-0000000000ed",
}


@pytest.mark.parametrize("service", list(Service))
@pytest.mark.parametrize("path", FAUST_PATHS)
def test_faust_own_paths_are_our_json_404_with_a_key_or_without(
    platform: Platform, shop: Shop, service: Service, path: str
) -> None:
    for client in (httpx, shop.http):
        answer = client.get(platform.url(service) + path, timeout=10)

        assert answer.status_code == 404, answer.text
        assert answer.json() == {"error": "not_found", "message": f"no route {path}"}


@pytest.mark.parametrize("service", list(Service))
def test_every_operation_of_the_openapi_document_is_routed(
    platform: Platform, shop: Shop, service: Service
) -> None:
    document = httpx.get(platform.url(service) + "/openapi.json", timeout=10).json()

    for template, operations in document["paths"].items():
        path = template
        for placeholder, value in FILLED.items():
            path = path.replace(placeholder, value)
        for method in operations:
            answer = shop.http.request(method.upper(), platform.url(service) + path)
            assert not answer.text.startswith('{"error": "not_found", "message": "no route'), (method, path)
            assert answer.status_code != 405, (method, path)


@pytest.mark.parametrize("service", list(Service))
def test_readyz_tells_anyone_its_checks_and_the_document_is_served_as_the_same_bytes(
    platform: Platform, shop: Shop, service: Service
) -> None:
    base = platform.url(service)
    anonymous = httpx.get(base + "/readyz", timeout=10)
    operator = shop.http.get(base + "/readyz")  # the suite's key has every scope, operator included
    documents = [httpx.get(base + "/openapi.json", timeout=10) for _ in range(3)]

    assert anonymous.status_code == operator.status_code == 200, anonymous.text
    all_ok = {"database": "ok", "broker": "ok", "replication": "ok", "api_keys": "ok"}
    assert anonymous.json()["checks"] == operator.json()["checks"] == all_ok
    assert documents[0].content == documents[1].content == documents[2].content
    assert documents[0].headers["content-type"] == "application/json; charset=utf-8"


def test_a_body_nested_600_deep_is_a_400_malformed_json(platform: Platform, shop: Shop) -> None:
    body = b'{"customer_id": ' + b"[" * 600 + b"]" * 600 + b"}"  # 1.2 KB

    answer = shop.http.post(
        platform.url(Service.PAYMENT) + "/checkout",
        content=body,
        headers={"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"},
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "error": "malformed_json",
        "message": f"the body is nested deeper than {MAX_JSON_DEPTH} levels",
    }


SLOW_CLIENTS = 500


@contextlib.contextmanager
def _descriptors(needed: int) -> Iterator[None]:
    """At least `needed` file descriptors for this process (the soft limit raised up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"{needed} file descriptors needed, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _is_closed(connection: socket.socket) -> bool:
    """Whether the server closed `connection` (what it sent before closing, if anything, is read away).
    poll, not select: the descriptors of 500 sockets go past select's 1024."""
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    while poller.poll(0):
        try:
            if not connection.recv(65536):
                return True
        except OSError:
            return True
    return False


def _wait_closed(connections: list[socket.socket], until: float) -> list[socket.socket]:
    """The connections still open at `until` (or as soon as none is)."""
    open_ = list(connections)
    while open_ and time.monotonic() < until:
        open_ = [connection for connection in open_ if not _is_closed(connection)]
        time.sleep(0.1)
    return open_


def test_500_silent_connections_do_not_stop_a_checkout_and_are_closed_after_the_head_timeout(
    platform: Platform, shop: Shop
) -> None:
    settings = platform.settings
    host, port = settings.http_host, settings.http_port(Service.PAYMENT)
    head_seconds, keepalive_seconds = settings.http_head_timeout_seconds, settings.http_keepalive_seconds
    with _descriptors(SLOW_CLIENTS * 2 + 200):
        opened = time.monotonic()
        slow: list[socket.socket] = []
        idle = socket.socket()
        try:
            for number in range(SLOW_CLIENTS):
                connection = socket.create_connection((host, port), timeout=10)
                if number % 2:  # half a request head, never finished; the other half sends nothing
                    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: payment\r\nX-Slow: ")
                slow.append(connection)
            all_open = time.monotonic()
            # And one that is answered, then idles: closed after the keep-alive.
            idle.settimeout(10)
            idle.connect((host, port))
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: payment\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")
            answered = time.monotonic()

            sku = shop.stock(3)
            order_id = shop.checkout([(sku, 1)])["order_id"]
            assert shop.order(order_id)["order_id"] == order_id
            assert time.monotonic() - opened < head_seconds - 1, "the checkout took longer than the timeout"
            assert not any(_is_closed(connection) for connection in slow)  # held until their deadline
            shop.ship_and_deliver(order_id)
            shop.wait_for(order_id, "COMPLETED")

            # By each connection's own head deadline, well before aiohttp's keep-alive (15 s) would.
            still_open = _wait_closed(slow, until=all_open + head_seconds + 2)
            closed_after = time.monotonic() - opened
            assert not still_open, f"{len(still_open)} connections still open after {closed_after:.1f}s"
            assert closed_after >= head_seconds - 1

            assert not _is_closed(idle)  # its keep-alive runs longer than the head timeout
            assert not _wait_closed([idle], until=answered + keepalive_seconds + 3)
            assert time.monotonic() - answered >= keepalive_seconds - 1
        finally:
            for connection in [*slow, idle]:
                connection.close()
