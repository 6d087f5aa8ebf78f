"""The web server of a service: only the routes it declares, and no connection kept by a client that is
silent.

Only declared routes answer. Faust's web driver serves views of its own beside ours — `/` (its index),
`/router/…` and `/table/…` always, `/assignment/`, `/graph/` and the statistics with APP_DEBUG — none in
the OpenAPI document, none behind a key, and `/router/x/` was a 500 with a traceback. `ServiceWeb` is
Faust's aiohttp driver with none of those built-in blueprints (the lists Faust's `Web` selects them
from are empty), so the router holds exactly the routes the service's blueprints declare. Nothing here
runs `@app.table_route`, the one thing Faust's router views exist for.

Slow clients. aiohttp closes an idle keep-alive connection after an hour by default, and that timer is
also the only one on a connection that never sends a whole request head: a few hundred sockets that
send half a head (or nothing) held the server's connections for as long. Here:
- a new connection must deliver its first request head within `head_seconds`
  (SAGA_HTTP_HEAD_TIMEOUT_SECONDS), or it is closed (`HeadDeadlines`: a deadline per connection, so an
  idle server has no timer waking it);
- a connection idle after an answer is closed after `keepalive_seconds` (SAGA_HTTP_KEEPALIVE_SECONDS),
  the next request's head included: aiohttp closes a connection still waiting for a head when its
  keep-alive runs out.
A request whose head has arrived is not timed here: its handler's own timeouts bound it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import faust
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from faust.types import TransportT
from faust.web.base import Web
from faust.web.drivers import aiohttp as faust_aiohttp

from common.config import Settings
from common.faust_consumer import InLoopTransport
from common.faust_monitor import QuietMonitor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    """How long the server waits for a client (the first request head, then between requests), and how
    long a client waits for an answer at most (`answer_seconds`, common/web.py)."""

    head_seconds: float
    keepalive_seconds: float
    answer_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            settings.http_head_timeout_seconds, settings.http_keepalive_seconds, settings.http_answer_seconds
        )


class HeadDeadlines:
    """Closes each connection that has not delivered a whole request head `seconds` after it opened. A
    connection waits for its deadline from the moment it opens (`watch`) until a request of it reaches
    the app (`middleware`); from then on aiohttp's keep-alive timer is its bound.

    One timer per connection, set when it opens (`watch` hooks the server's `connection_made`), rather
    than a sweep of all connections every half second: that sweep woke every service twice a second
    with no connection open at all (2 of the ~20 timers an idle service scheduled a second). Nothing is
    remembered of a connection past its deadline, heard or not, however long it lives."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._waiting: set[RequestHandler] = set()

    @property
    def waiting(self) -> int:
        """Connections open without a request head yet, their deadline still ahead."""
        return len(self._waiting)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        self._waiting.discard(request.protocol)
        return await handler(request)

    def watch(self, server: web.Server) -> None:
        """Give every connection `server` accepts from now on its deadline."""
        made = server.connection_made

        def connection_made(connection: RequestHandler, transport: asyncio.Transport) -> None:
            made(connection, transport)
            self.opened(connection)

        server.connection_made = connection_made  # type: ignore[method-assign]

    def opened(self, connection: RequestHandler) -> asyncio.TimerHandle:
        self._waiting.add(connection)
        return asyncio.get_running_loop().call_later(self.seconds, self._deadline, connection)

    def _deadline(self, connection: RequestHandler) -> None:
        if connection not in self._waiting:
            return  # heard in time
        self._waiting.discard(connection)
        if connection.transport is not None:  # not closed by its client meanwhile
            log.info("closed a connection without a request head after %.0fs", self.seconds)
            connection.force_close()


class ServiceWeb(faust_aiohttp.Web):
    """Faust's aiohttp web driver serving only the service's own blueprints, with `HttpLimits`."""

    # Faust's built-in views (its index, router, tables, statistics, graph, performance): none.
    default_blueprints: ClassVar[Any] = ()
    production_blueprints: ClassVar[Any] = ()
    debug_blueprints: ClassVar[Any] = ()
    optional_blueprints: ClassVar[Any] = ()

    def __init__(self, app: ServiceApp, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = app.http_limits
        self.head_deadlines = HeadDeadlines(self.limits.head_seconds)
        self.web_app.middlewares.append(self.head_deadlines.middleware)
        # Faust's runner, with the keep-alive bounded (aiohttp's default: an hour). It is only set up
        # when the server starts, so replacing it here changes nothing else.
        self._runner = web.AppRunner(
            self.web_app, access_log=None, keepalive_timeout=self.limits.keepalive_seconds
        )

    async def start_server(self) -> None:
        """Faust's start (the runner, then its site), with every connection's head deadline set as it
        opens: the server exists once the runner is set up, and takes connections once the site starts."""
        await self._runner.setup()
        server = self._runner.server
        assert server is not None, "aiohttp's runner makes its server in setup()"
        self.head_deadlines.watch(server)
        await self._create_site().start()


class ServiceApp(faust.App):
    """A service's Faust app: its web server is a `ServiceWeb` with these `HttpLimits`, its Kafka
    consumer runs on the worker's event loop (`InLoopTransport`), and its monitor samples no rates
    (`QuietMonitor`)."""

    def __init__(self, id: str, *, http_limits: HttpLimits, **options: Any) -> None:
        self.http_limits = http_limits
        super().__init__(id, Monitor=QuietMonitor, **options)

    def _new_transport(self) -> TransportT:
        # The one place Faust picks its Kafka transport (by the broker URL's scheme): Faust's aiokafka
        # transport, with the consumer on the worker's loop instead of a thread (common/faust_consumer.py).
        return InLoopTransport(self.conf.broker_consumer, self, loop=self.loop)

    def _new_web(self) -> Web:
        # The one place Faust picks its web driver (by the URL scheme of the `web` setting); ours is
        # Faust's aiohttp driver with the changes above.
        return ServiceWeb(self)
