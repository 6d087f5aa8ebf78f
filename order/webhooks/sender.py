"""The webhook sender: POSTs due deliveries to their endpoints, apart from the saga.

It runs as a task of the order worker with its own small connection pool, and never holds anything the
saga waits for: a slow or dead receiver ties up only the sender's own slots (at most `concurrency`
requests in flight, each cut off after `timeout`), and the saga's transactions never wait for it.

A round: claim due deliveries for the free slots (each claim is a lease: a sender that dies mid-request
leaves its deliveries due again after the lease, so another attempt follows: at least once), send each
on its own, and settle the finished ones together in one transaction (attempts recorded, acknowledged
ones delivered and their order's next event made due, failed ones given their next time). It is woken
right after each commit of the order service and each settle; otherwise it looks every `poll_seconds`,
or every `idle_poll_seconds` while no endpoint is enabled anywhere (nothing can be due then, and this
worker's own API wakes it when one is registered or enabled).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.ext.asyncio import AsyncEngine

from common.database_clock import DATABASE_CLOCK, DatabaseClock
from common.db import is_transient_database_error
from common.retry import Backoff
from order.webhooks import store
from order.webhooks.events import render
from order.webhooks.policy import (
    RetryPolicy,
    acknowledged,
    is_public,
    retry_delay,
    should_disable,
    url_problem,
)
from order.webhooks.signing import signature_header

log = logging.getLogger(__name__)

USER_AGENT = "saga-platform-webhooks/1"
_ERROR_BODY_BYTES = 200  # of a failing answer's body, kept with the attempt


@dataclass(frozen=True)
class SenderSettings:
    concurrency: int = 16
    per_endpoint: int = 8  # requests in flight to one endpoint at once (a failing one: 1)
    timeout: timedelta = timedelta(seconds=10)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    allow_local: bool = False
    poll_seconds: float = 1.0
    idle_poll_seconds: float = 5.0

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is left alone: the attempt's timeout and time to settle it (past
        that, its sender is taken for dead and it is attempted again)."""
        return self.timeout + timedelta(seconds=10)


class PublicAddressesOnly(AbstractResolver):
    """Resolves names to their public addresses only: a name that points into the platform's own network
    (loopback, private, link-local) cannot be made to receive, however it was registered."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public(ipaddress.ip_address(entry["host"]))]
        if not public:
            raise OSError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


class WebhookSender:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: SenderSettings,
        *,
        random_fraction: Callable[[], float] = random.random,
        clock: DatabaseClock | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._random = random_fraction
        # Signatures and attempts are stamped with the database's clock: a shop checks a signature's
        # timestamp against its own clock, and this host's may jump (tests/chaos/test_clock_faults.py).
        self._clock = clock or DATABASE_CLOCK
        self._wakeup = asyncio.Event()
        self._finished: list[store.Outcome] = []
        self._settle_wakeup = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._in_flight_by_endpoint: Counter[uuid.UUID] = Counter()
        self._endpoints_enabled = True  # until a round finds none
        self.attempts_total = 0
        self.delivered_total = 0

    def wake(self) -> None:
        """Something may be due now (called after a commit of the order service). While no endpoint is
        enabled anywhere, a commit cannot have queued anything: the poll alone looks (an endpoint
        enabled by another worker is found within `idle_poll_seconds`)."""
        if self._endpoints_enabled:
            self._wakeup.set()

    def endpoints_changed(self) -> None:
        """An endpoint was registered or enabled through this worker's API: look at once."""
        self._endpoints_enabled = True
        self._wakeup.set()

    async def run_forever(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._settings.concurrency,
            resolver=None if self._settings.allow_local else PublicAddressesOnly(),
        )
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout.total_seconds())
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            settler = asyncio.ensure_future(self._settle_forever())
            try:
                await self._claim_forever(session)
            finally:
                settler.cancel()
                for task in list(self._in_flight):
                    task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.gather(settler, *self._in_flight, return_exceptions=True)

    async def _claim_forever(self, session: aiohttp.ClientSession) -> None:
        backoff = Backoff(initial=0.2, maximum=10.0)
        while True:
            self._wakeup.clear()
            free = self._settings.concurrency - len(self._in_flight)
            claimed: list[store.Claimed] = []
            if free > 0:
                try:
                    async with self._engine.begin() as conn:
                        claimed = await store.claim(
                            conn,
                            free,
                            self._settings.lease,
                            per_endpoint=self._settings.per_endpoint,
                            in_flight=self._in_flight_by_endpoint,
                        )
                        if not claimed:
                            self._endpoints_enabled = await store.any_endpoint_enabled(conn)
                    backoff.reset()
                except Exception as error:  # the database is away: try again later, never die
                    delay = backoff.next_delay()
                    log.warning(
                        "webhooks: cannot claim deliveries (%s); again in %.1fs", type(error).__name__, delay
                    )
                    await asyncio.sleep(delay)
                    continue
            if claimed:
                self._clock.read(claimed[0].claimed_at)
            for delivery in claimed:
                task = asyncio.ensure_future(self._attempt(session, delivery))
                self._in_flight.add(task)
                self._in_flight_by_endpoint[delivery.endpoint_id] += 1
                task.add_done_callback(self._in_flight.discard)
                task.add_done_callback(functools.partial(self._released, delivery.endpoint_id))
            if claimed and len(claimed) == free:
                await self._slot_or_wakeup()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds())

    def _poll_seconds(self) -> float:
        settings = self._settings
        return settings.poll_seconds if self._endpoints_enabled else settings.idle_poll_seconds

    def _released(self, endpoint_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._in_flight_by_endpoint[endpoint_id] -= 1
        if self._in_flight_by_endpoint[endpoint_id] <= 0:
            del self._in_flight_by_endpoint[endpoint_id]

    async def _slot_or_wakeup(self) -> None:
        """Every slot is taken: wait for one to free up (more may be due)."""
        if self._in_flight:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def _attempt(self, session: aiohttp.ClientSession, delivery: store.Claimed) -> None:
        body = render(
            delivery.event_id,
            delivery.event_type,
            delivery.seq,
            delivery.occurred_at,
            delivery.order_snapshot,
        )
        at = self._clock.now()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Saga-Event-Id": str(delivery.event_id),
            "Saga-Event-Type": delivery.event_type,
            "Saga-Delivery-Attempt": str(delivery.attempt),
            "Saga-Signature": signature_header(delivery.secrets, int(at.timestamp()), body),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        problem = url_problem(delivery.url, allow_local=self._settings.allow_local)
        if problem is not None:
            error = f"not sent: {problem}"
        else:
            try:
                async with session.post(
                    delivery.url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    if not acknowledged(status):
                        text = (await response.content.read(_ERROR_BODY_BYTES)).decode(errors="replace")
                        error = f"HTTP {status}" + (f": {text.strip()}" if text.strip() else "")
            except TimeoutError:
                error = f"no answer within {self._settings.timeout.total_seconds():g}s"
            except (aiohttp.ClientError, OSError) as failure:
                error = f"{type(failure).__name__}: {failure}"[:300]
        delivered = problem is None and acknowledged(status)
        policy = self._settings.policy
        retry_in = 0.0 if delivered else retry_delay(delivery.attempt, policy, self._random())
        gate = 0.0 if delivered else retry_delay(delivery.endpoint_failures + 1, policy, self._random())
        self._finished.append(
            store.Outcome(
                claimed=delivery,
                at=at,
                status_code=status,
                latency_ms=(time.perf_counter() - started) * 1000,
                error=error,
                delivered=delivered,
                retry_in=retry_in,
                endpoint_retry_in=gate,
            )
        )
        self._settle_wakeup.set()

    async def _settle_forever(self) -> None:
        backoff = Backoff(initial=0.2, maximum=10.0)
        while True:
            await self._settle_wakeup.wait()
            self._settle_wakeup.clear()
            outcomes, self._finished = self._finished, []
            if not outcomes:
                continue
            try:
                await self._settle(outcomes)
                backoff.reset()
            except Exception as error:
                if not is_transient_database_error(error):
                    await self._settle_one_by_one(outcomes)
                    continue
                # The database is away: kept and settled on the next round (the lease covers a crash).
                self._finished = outcomes + self._finished
                delay = backoff.next_delay()
                log.warning(
                    "webhooks: cannot record attempts (%s); again in %.1fs", type(error).__name__, delay
                )
                await asyncio.sleep(delay)
                self._settle_wakeup.set()
                continue
            self.wake()  # slots freed up, and the next events of acknowledged orders may be due

    async def _settle(self, outcomes: list[store.Outcome]) -> None:
        async with self._engine.begin() as conn:
            await store.settle(conn, outcomes)
        self.attempts_total += len(outcomes)
        self.delivered_total += sum(outcome.delivered for outcome in outcomes)

    async def _settle_one_by_one(self, outcomes: list[store.Outcome]) -> None:
        """A batch the database refused for something other than an outage: each outcome alone, so one
        that cannot be recorded (its delivery gone meanwhile) never holds back the others. One refused
        again is dropped: its delivery is due again after its lease, and is attempted again."""
        for outcome in outcomes:
            try:
                await self._settle([outcome])
            except Exception as error:
                log.warning(
                    "webhooks: attempt of event %s to endpoint %s not recorded (%s)",
                    outcome.claimed.event_id,
                    outcome.claimed.endpoint_id,
                    type(error).__name__,
                )
        self.wake()

    async def housekeep(self) -> None:
        """Disable the endpoints that have failed for too long (`policy.should_disable`)."""
        async with self._engine.begin() as conn:
            now = await store.database_now(conn)  # the endpoints' failing times are on its clock
            failing = await store.failing_since(conn)
            due = [e for e, since in failing.items() if should_disable(since, now, self._settings.policy)]
            disabled = await store.disable(conn, due) if due else []
        for endpoint_id, owner in disabled:
            log.warning(
                "webhooks: endpoint %s of %s disabled: every attempt failed too long", endpoint_id, owner
            )
