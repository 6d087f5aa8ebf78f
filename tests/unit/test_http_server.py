"""The web server of each service serves exactly the routes of its OpenAPI document (none of Faust's
own views, even with APP_DEBUG), and closes connections that never send a request head."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import faust
import pytest
from aiohttp.test_utils import make_mocked_request
from mode.services import ServiceTask

from common import operations_api
from common.auth import Scope, entry_for, new_key
from common.config import Service, Settings
from common.context import ServiceContext
from common.http_server import HeadDeadlines, HttpLimits, ServiceWeb
from common.openapi import build_openapi
from common.web import dependency
from delivery.app import create_app as create_delivery
from order.app import create_app as create_order
from payment.app import create_app as create_payment

FACTORIES: dict[Service, Callable[[Settings], faust.App]] = {
    Service.PAYMENT: create_payment,
    Service.ORDER: create_order,
    Service.DELIVERY: create_delivery,
}
# Enough to build an app: nothing is connected to until it starts.
ENVIRONMENT = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    **{f"{service.value.upper()}_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/db" for service in Service},
    "SAGA_API_KEYS": entry_for("unit", [Scope.OPERATOR], new_key()).line(),
    "SAGA_HTTP_HEAD_TIMEOUT_SECONDS": "4",
    "SAGA_HTTP_KEEPALIVE_SECONDS": "6",
}


def _served_app(service: Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> faust.App:
    """The service's app as its factory builds it, its web server set up as when the worker starts it;
    with Faust's debug mode on, which turns on the most views of Faust's own."""
    for name, value in {**ENVIRONMENT, "APP_DEBUG": "1", "SAGA_STATE_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    app = FACTORIES[service](Settings())
    app.web.init_server()
    return app


def _documented_operations(app: faust.App) -> set[tuple[str, str]]:
    context = dependency(app, ServiceContext)
    document = build_openapi("t", "", context.routes)
    operations = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    return operations | {("HEAD", path) for method, path in operations if method == "GET"}


@pytest.mark.parametrize("service", list(Service))
def test_the_router_serves_exactly_the_operations_of_the_openapi_document(
    service: Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    app = _served_app(service, monkeypatch, tmp_path)
    router = app.web.web_app.router

    served = {(route.method, route.resource.canonical) for route in router.routes() if route.resource}

    assert app.conf.debug and app.conf.web_stats_enabled and app.conf.web_router_enabled
    assert served == _documented_operations(app)
    assert not any(path == "/" or path.startswith(("/router", "/table", "/assignment")) for _, path in served)


def test_the_web_server_takes_its_limits_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    web = _served_app(Service.PAYMENT, monkeypatch, tmp_path).web

    assert isinstance(web, ServiceWeb)
    assert web.limits == HttpLimits(head_seconds=4.0, keepalive_seconds=6.0, answer_seconds=5.0)
    assert web.head_deadlines.seconds == 4.0


class _Connection:
    """A connection as aiohttp's are: slots, no weak references; its transport gone once closed."""

    __slots__ = ("transport",)

    def __init__(self) -> None:
        self.transport: object | None = object()

    def force_close(self) -> None:
        self.transport = None

    @property
    def closed(self) -> bool:
        return self.transport is None


class _Request:
    def __init__(self, protocol: _Connection) -> None:
        self.protocol = protocol


class _Server:
    def __init__(self) -> None:
        self.connections: list[_Connection] = []

    def connection_made(self, connection: _Connection, transport: object) -> None:
        self.connections.append(connection)


async def test_a_connection_without_a_request_head_is_closed_at_its_deadline_and_one_heard_is_not() -> None:
    # Real timers, with a quarter of a second either side of every check for a loaded machine.
    deadlines = HeadDeadlines(1.0)
    server = _Server()
    deadlines.watch(server)  # type: ignore[arg-type]
    silent, heard = _Connection(), _Connection()

    async def answer(request: Any) -> str:
        return "answered"

    server.connection_made(silent, object())
    server.connection_made(heard, object())
    assert await deadlines.middleware(_Request(heard), answer) == "answered"  # type: ignore[arg-type]
    await asyncio.sleep(0.5)
    late = _Connection()
    server.connection_made(late, object())
    assert not silent.closed  # half of its second

    await asyncio.sleep(0.75)  # silent's deadline is past, late's a quarter of a second ahead
    assert server.connections == [silent, heard, late]  # the server's own bookkeeping still runs
    assert (silent.closed, heard.closed, late.closed) == (True, False, False)
    await asyncio.sleep(0.5)
    assert late.closed
    assert deadlines.waiting == 0


async def test_a_keep_alive_connection_is_not_remembered_past_its_deadline_whatever_it_sends() -> None:
    deadlines = HeadDeadlines(0.05)
    server = _Server()
    deadlines.watch(server)  # type: ignore[arg-type]
    connection = _Connection()

    async def answer(request: Any) -> str:
        return "answered"

    server.connection_made(connection, object())
    assert deadlines.waiting == 1
    await deadlines.middleware(_Request(connection), answer)  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    await deadlines.middleware(_Request(connection), answer)  # type: ignore[arg-type]  # its next request

    assert deadlines.waiting == 0
    assert not connection.closed


async def test_an_idle_web_server_has_no_timer_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    web = _served_app(Service.PAYMENT, monkeypatch, tmp_path).web
    timers = [name for name in dir(type(web)) if isinstance(getattr(type(web), name), ServiceTask)]

    assert timers == []


async def test_the_openapi_document_is_built_once_and_served_as_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    app = _served_app(Service.ORDER, monkeypatch, tmp_path)
    view = app.web.views["/openapi.json"]
    builds: list[int] = []

    def counted(*args: Any) -> dict[str, Any]:
        builds.append(1)
        return build_openapi(*args)

    monkeypatch.setattr(operations_api, "build_openapi", counted)
    answers: list[Any] = [await view.dispatch(make_mocked_request("GET", "/openapi.json")) for _ in range(3)]

    assert len(builds) == 1
    assert answers[0].body is answers[1].body is answers[2].body
    assert answers[0].headers["Content-Type"] == "application/json; charset=utf-8"
    document = json.loads(answers[0].body)
    assert set(document["paths"]) == {path for _, path in _documented_operations(app)}


async def test_a_request_unanswered_by_its_deadline_gets_a_503_at_once_and_its_work_is_cancelled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    app = _served_app(Service.ORDER, monkeypatch, tmp_path)
    app.http_limits = HttpLimits(head_seconds=4.0, keepalive_seconds=6.0, answer_seconds=0.05)
    view = app.web.views["/openapi.json"]
    cancelled = asyncio.Event()

    async def waits_on_a_frozen_database(request: Any) -> Any:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    monkeypatch.setattr(view, "_answer", waits_on_a_frozen_database)
    answer = await asyncio.wait_for(view.dispatch(make_mocked_request("GET", "/openapi.json")), 2)

    assert answer.status == 503 and answer.headers["Retry-After"] == "1"
    assert json.loads(answer.body)["message"].startswith("no answer within 0.05 s")
    await asyncio.wait_for(cancelled.wait(), 2)


async def test_a_request_answered_in_time_is_answered_as_it_was(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    app = _served_app(Service.ORDER, monkeypatch, tmp_path)
    answer = await app.web.views["/openapi.json"].dispatch(make_mocked_request("GET", "/openapi.json"))
    assert answer.status == 200 and json.loads(answer.body)["openapi"]
