"""`saga_webhooks`: a real HTTP receiver of the platform's webhooks, for one test.

It listens on 127.0.0.1 and a free port (so the platform must run on this machine: the one the plugin
starts, or `saga run`, both of which allow loopback endpoint URLs), is subscribed for the test shop to every
event type at setup and deleted at teardown. It records every request as it came (body, headers, arrival
time, what it answered) and checks each one's signature against the secrets it holds, at the time of its
arrival (`saga_client.webhooks.verify`); a request that fails is recorded with the reason, never dropped.

    order = saga.checkout(...).order_id
    saga_webhooks.wait_for(order, "order.completed")     # the verified event, once it arrived
    saga_webhooks.assert_in_order(order)                 # sequence 1..n, in order of arrival
    saga_webhooks.assert_all_verified()
    saga_webhooks.fail(status=503, for_seconds=5)        # answer 503 (the platform retries)
    saga_webhooks.hang(15)                               # hold each answer past the platform's timeout
    saga_webhooks.answer_late(1.5)                       # 200 after a random wait: answers out of order
    saga_webhooks.answer_normally()                      # 200 at once again (held answers are let go)

It answers 200 to anything by default, signed or not: a bad signature is the test's to assert
(`assert_all_verified`), and refusing it would only make the platform retry. Duplicates (an event id that
arrived twice: a retry after a lost answer, a resend) are what "at least once" allows; `events_of`
counts each event once, at its first arrival, and `duplicates()` lists them.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from saga_client.client import SagaClient
from saga_client.errors import InvalidSignature
from saga_client.models import WebhookEndpoint, WebhookEndpointCreated, WebhookSecretRotated
from saga_client.webhooks import SIGNATURE_HEADER, WebhookEvent, parse, verify

PATH = "/saga-hooks"


@dataclass(frozen=True)
class ReceivedWebhook:
    """One request as it arrived. `event` is set when its signature verified with a secret the receiver
    holds (at `arrived_at`); `error` says why not otherwise: an `InvalidSignature` (its `reason`, or
    `no_secret` while the receiver holds none), or a `ValueError` for a signed body that is no event.
    `answered` is the status the receiver sent, after holding the answer `held_for` seconds (`hang`); the
    platform may have given up by then."""

    index: int  # 0 for the first request the receiver got, then 1, 2, …
    path: str
    headers: Mapping[str, str]
    body: bytes
    arrived_at: float  # Unix time
    answered: int
    held_for: float
    event: WebhookEvent | None = None
    error: InvalidSignature | ValueError | None = None

    def header(self, name: str) -> str | None:
        """A header's value, by its name in any case (None if it was not sent)."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)

    @property
    def attempt(self) -> int | None:
        """The platform's `Saga-Delivery-Attempt` (1, 2, … for the same event), if it sent one."""
        value = self.header("Saga-Delivery-Attempt")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def order_id(self) -> str | None:
        """The order the body is about, read even when it did not verify (to report it)."""
        if self.event is not None:
            return self.event.order.order_id
        try:
            return parse(self.body).order.order_id
        except ValidationError:
            return None


@dataclass(frozen=True)
class _Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived_at: float
    answered: int
    held_for: float


@dataclass
class _Mode:
    """How the next requests are answered: `status` after `hold` seconds, until `until` (monotonic; None:
    until told otherwise)."""

    status: int = 200
    hold: float = 0.0
    until: float | None = None
    release: threading.Event = field(default_factory=threading.Event)
    scatter: float = 0.0  # each answer held a random time up to this many seconds (out of order)

    def hold_now(self) -> float:
        return self.hold + (random.uniform(0.0, self.scatter) if self.scatter else 0.0)

    def describe(self) -> str:
        if self.scatter:
            return f"answering 200 after up to {self.scatter:g}s, in no order"
        if self.hold:
            return f"holding each answer {self.hold:g}s"
        return "answering 200" if self.status == 200 else f"answering {self.status}"


class SagaWebhooks:
    """A webhook receiver on 127.0.0.1 (`url`), recording what arrives; see the module's docstring.

    `secrets` are the ones it verifies with (`subscribe` and `rotate_secret` add theirs); every secret it
    was ever given keeps verifying, so a request signed with a secret whose rotation overlap ended still
    passes here."""

    def __init__(self, secrets: Iterable[str] = (), *, host: str = "127.0.0.1") -> None:
        self.secrets: list[str] = list(secrets)
        self.endpoint: WebhookEndpoint | None = None
        self.event_types: list[str] | None = None  # what it is subscribed to; None: every type
        self._host = host
        self._client: SagaClient | None = None
        self._condition = threading.Condition()
        self._arrivals: list[_Arrival] = []
        self._received: list[ReceivedWebhook] = []  # verified arrivals, with `_verified_with`
        self._verified_with: tuple[str, ...] = ()
        self._mode = _Mode()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> SagaWebhooks:
        """Listen on a free port (in a thread of its own)."""
        if self._server is not None:
            return self
        self._server = _Server((self._host, 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="saga-webhooks",
            kwargs={"poll_interval": 0.1},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; answers being held are let go."""
        with self._condition:
            self._mode.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def close(self) -> None:
        """Unsubscribe (if subscribed), then stop; stops even if unsubscribing fails."""
        try:
            self.unsubscribe()
        finally:
            self.stop()

    def __enter__(self) -> SagaWebhooks:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not listening: start() it first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    # -- subscription -------------------------------------------------------------------------------
    def subscribe(
        self,
        client: SagaClient,
        *,
        event_types: Iterable[str] | None = None,
        description: str = "saga_webhooks (pytest)",
    ) -> WebhookEndpointCreated:
        """Register `url` as an endpoint of the client's shop (every type unless `event_types`), and
        verify with its secret."""
        types = None if event_types is None else list(event_types)
        created = client.create_webhook(self.url, event_types=types, description=description)
        with self._condition:
            self._client = client
            self.endpoint = created
            self.event_types = types
            self.secrets.append(created.secret)
        return created

    def unsubscribe(self) -> None:
        """Delete the endpoint `subscribe` created (what was pending for it goes with it)."""
        if self.endpoint is None or self._client is None:
            return
        self._client.delete_webhook(self.endpoint.id)
        self.endpoint = None

    def rotate_secret(self, *, overlap_seconds: int = 86400) -> WebhookSecretRotated:
        """Rotate the endpoint's secret, and verify with the new one too."""
        if self.endpoint is None or self._client is None:
            raise RuntimeError("the receiver is not subscribed: subscribe() first")
        rotated = self._client.rotate_webhook_secret(self.endpoint.id, overlap_seconds=overlap_seconds)
        with self._condition:
            self.secrets.append(rotated.secret)
        return rotated

    # -- how it answers -----------------------------------------------------------------------------
    def fail(self, status: int = 500, *, for_seconds: float | None = None) -> None:
        """Answer `status` to every request (for `for_seconds`, or until `answer_normally`)."""
        if not 100 <= status <= 599:
            raise ValueError(f"an HTTP status is 100..599, not {status}")
        until = None if for_seconds is None else time.monotonic() + for_seconds
        self._set_mode(_Mode(status=status, until=until))

    def hang(self, seconds: float) -> None:
        """Hold the answer to every request `seconds` (past the platform's timeout, 10 s, it counts as a
        failure), then answer 200; `answer_normally` or `stop` lets held answers go at once."""
        if seconds <= 0:
            raise ValueError("hang(seconds) holds answers a positive number of seconds")
        self._set_mode(_Mode(hold=seconds))

    def answer_late(self, up_to: float) -> None:
        """Answer 200 after a random time up to `up_to` seconds, each request its own: answers then come
        back in another order than the requests went out (keep it under the platform's timeout for them
        to count as acknowledged)."""
        if up_to <= 0:
            raise ValueError("answer_late(up_to) holds answers a positive number of seconds")
        self._set_mode(_Mode(scatter=up_to))

    def answer_normally(self) -> None:
        """Answer 200 at once again; answers being held go now."""
        self._set_mode(_Mode())

    def _set_mode(self, mode: _Mode) -> None:
        with self._condition:
            self._mode.release.set()
            self._mode = mode

    def _mode_now(self) -> _Mode:
        with self._condition:
            if self._mode.until is not None and time.monotonic() >= self._mode.until:
                self._mode.release.set()
                self._mode = _Mode()
            return self._mode

    def _record(self, arrival: _Arrival) -> None:
        with self._condition:
            self._arrivals.append(arrival)
            self._condition.notify_all()

    # -- what arrived -------------------------------------------------------------------------------
    def received(self) -> list[ReceivedWebhook]:
        """Every request, in order of arrival, with its verification."""
        with self._condition:
            return self._verified()

    def events(self) -> list[WebhookEvent]:
        """Every verified event, once each (at its first arrival), in order of arrival."""
        with self._condition:
            return _distinct(r.event for r in self._verified())

    def events_of(self, order_id: str) -> list[WebhookEvent]:
        """The order's verified events, once each (at its first arrival), in order of arrival."""
        with self._condition:
            return self._events_of(order_id)

    def duplicates(self) -> dict[UUID, list[ReceivedWebhook]]:
        """The verified events that arrived more than once, with each of their requests."""
        by_id: dict[UUID, list[ReceivedWebhook]] = {}
        for request in self.received():
            if request.event is not None:
                by_id.setdefault(request.event.id, []).append(request)
        return {event_id: requests for event_id, requests in by_id.items() if len(requests) > 1}

    def wait_for(self, order_id: str, event_type: str, *, timeout: float = 30.0) -> WebhookEvent:
        """The order's verified event of `event_type`, once it arrived; `AssertionError` after `timeout`
        seconds, saying what did arrive for the order."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                found = next((e for e in self._events_of(order_id) if e.type == event_type), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    story = self._story(order_id)
                    raise AssertionError(
                        f"no verified {event_type} of order {order_id} after {timeout:g}s; {story}"
                    )
                self._condition.wait(remaining)

    def assert_in_order(self, order_id: str) -> None:
        """The order's events arrived in the order they happened: numbered 1, 2, … n with no gap in order
        of first arrival (subscribed to every type), or at least increasing (subscribed to some types,
        which leaves gaps where the others were)."""
        with self._condition:
            events = self._events_of(order_id)
            story = self._story(order_id)
            every_type = self.event_types is None
        if not events:
            raise AssertionError(f"no verified event of order {order_id} arrived; {story}")
        sequences = [event.sequence for event in events]
        if every_type:
            expected = list(range(1, len(events) + 1))
            if sequences != expected:
                raise AssertionError(
                    f"the events of order {order_id} arrived as sequence {sequences}, not {expected}; {story}"
                )
        elif any(later <= earlier for earlier, later in itertools.pairwise(sequences)):
            raise AssertionError(f"the events of order {order_id} arrived out of order: {sequences}; {story}")

    def assert_all_verified(self) -> None:
        """Every request that arrived verified (right secret, fresh timestamp, a body that is an event)."""
        failed = [r for r in self.received() if r.event is None]
        if failed:
            raise AssertionError(
                f"{len(failed)} of {len(self.received())} webhook requests did not verify:\n- "
                + "\n- ".join(
                    f"#{r.index} (event {r.header('Saga-Event-Id')}, order {r.order_id}): {r.error}"
                    for r in failed
                )
            )

    def _verified(self) -> list[ReceivedWebhook]:
        """The arrivals with their verification, under the lock. Each is verified once per set of secrets
        (with the time it arrived, so the result does not change with the time it is read)."""
        secrets = tuple(self.secrets)
        if secrets != self._verified_with:
            self._received, self._verified_with = [], secrets
        for index in range(len(self._received), len(self._arrivals)):
            self._received.append(_verify(index, self._arrivals[index], secrets))
        return list(self._received)

    def _events_of(self, order_id: str) -> list[WebhookEvent]:
        return _distinct(r.event for r in self._verified() if r.event and r.event.order.order_id == order_id)

    def _story(self, order_id: str) -> str:
        """What arrived for the order, in words, for a failure message (under the lock)."""
        received = [r for r in self._verified() if r.order_id == order_id]
        seen = ", ".join(
            f"{r.event.type}#{r.event.sequence}" + ("" if r.answered == 200 else f" (answered {r.answered})")
            for r in received
            if r.event is not None
        )
        unverified = [str(r.error) for r in received if r.event is None]
        parts = [f"its requests: [{seen}]" if seen else "no request of it arrived"]
        if unverified:
            parts.append(f"{len(unverified)} did not verify: {'; '.join(sorted(set(unverified)))}")
        parts.append(f"{len(self._arrivals)} requests in all; the receiver is {self._mode.describe()}")
        return "; ".join(parts)


def _verify(index: int, arrival: _Arrival, secrets: tuple[str, ...]) -> ReceivedWebhook:
    event: WebhookEvent | None = None
    error: InvalidSignature | ValueError | None = None
    header = next((v for k, v in arrival.headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
    if not secrets:
        error = InvalidSignature("the receiver holds no secret (not subscribed)", reason="no_secret")
    else:
        try:
            event = verify(arrival.body, header, secrets, now=arrival.arrived_at)
        except InvalidSignature as refused:
            error = refused
        except ValidationError as invalid:  # signed, but not an event
            error = ValueError(f"the body is not a webhook event: {invalid}")
    return ReceivedWebhook(
        index=index,
        path=arrival.path,
        headers=arrival.headers,
        body=arrival.body,
        arrived_at=arrival.arrived_at,
        answered=arrival.answered,
        held_for=arrival.held_for,
        event=event,
        error=error,
    )


def _distinct(events: Iterable[WebhookEvent | None]) -> list[WebhookEvent]:
    seen: set[UUID] = set()
    kept = []
    for event in events:
        if event is not None and event.id not in seen:
            seen.add(event.id)
            kept.append(event)
    return kept


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request still held does not keep the test process alive

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], receiver: SagaWebhooks
    ) -> None:
        self.receiver = receiver
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30  # seconds an idle connection is kept (the platform may hold one open)

    def do_POST(self) -> None:
        body = self._body()
        arrived_at = time.time()
        receiver = self.server.receiver
        mode = receiver._mode_now()
        hold = mode.hold_now()
        receiver._record(
            _Arrival(
                path=self.path,
                headers=dict(self.headers.items()),
                body=body,
                arrived_at=arrived_at,
                answered=mode.status,
                held_for=hold,
            )
        )
        if hold:
            mode.release.wait(hold)
        self._answer(mode.status, b"recorded\n" if mode.status < 300 else b"failing as told\n")

    def do_GET(self) -> None:
        self._answer(405, b"POST webhooks here\n")

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, text: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
        except (BrokenPipeError, ConnectionResetError):  # the platform gave up waiting (a held answer)
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: what arrived is in the receiver's record, not on stderr."""
