"""Readiness — database and broker reachable, saga topics replicated as the cluster allows, API keys
readable — found out in the background and read from memory.

`/readyz` is public, so anyone can call it as often as they like: it must cost nothing. The view answers
the last round's results and does no I/O of its own; when those are a second old or more it starts a new
round in the background (`ReadinessChecks.current`), so rounds run at most once a second however often
`/readyz` is asked — and not at all while nobody asks: a service's idle CPU (and the broker's, which
answers the topic descriptions) is not spent on a question nobody put. Results older than
STALE_AFTER_SECONDS (the first ask after a quiet spell, or before any round) are not answered: the ask
waits for the round it started, so an answer is never older than that. Every check runs at once, each
bounded by CHECK_TIMEOUT_SECONDS. A check is `ok`, `failed` or `under-replicated` (`pending` until the
first round ends), with the reason; the reason (an exception's text: hosts, ports, roles; which topics
lack copies) is for operators only (`shown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import select

from common.api_keys import ApiKeys
from common.auth import Caller, Scope
from common.context import ServiceContext
from common.db import reading
from common.kafka import ClusterTopics, describe_cluster_topics, problems_in
from common.kafka_security import KafkaConnection, kafka_connection

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
UNDER_REPLICATED = "under-replicated"
PENDING = "pending"

CHECK_TIMEOUT_SECONDS = 3.0
ROUND_INTERVAL_SECONDS = 1.0
STALE_AFTER_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    """One check's result: its status, and why when it is not ok."""

    status: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def shown(self, with_reason: bool) -> str:
        """The status, followed by the reason when `with_reason` (an operator asks) and there is one."""
        return f"{self.status}: {self.reason}" if with_reason and self.reason else self.status


Probe = Callable[[], Awaitable[Check]]


def sees_reasons(caller: Caller | None) -> bool:
    """Whether `caller` is shown why a check fails: operators only (with authentication off, everyone)."""
    return caller is not None and Scope.OPERATOR in caller.scopes


class ReadinessChecks:
    """The last results of the readiness checks; reading them is free, and a read of results `interval`
    old or more starts the next round in the background (`current`)."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        interval: float = ROUND_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probes = dict(probes)
        self.interval = interval
        self._clock = clock
        self._round: asyncio.Task[None] | None = None
        self._round_started = -float("inf")
        self._round_ended = -float("inf")
        self.results: dict[str, Check] = {name: Check(PENDING, "not checked yet") for name in self._probes}

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.results.values())

    def shown(self, with_reasons: bool) -> dict[str, str]:
        return {name: check.shown(with_reasons) for name, check in self.results.items()}

    async def current(self) -> ReadinessChecks:
        """These checks as they stand, after starting the next round in the background if the last one
        started `interval` ago or more and none is running. Only results older than STALE_AFTER_SECONDS
        wait for the round under way (at most its checks' timeout); fresh ones are answered at once."""
        now = self._clock()
        idle = self._round is None or self._round.done()
        if idle and now - self._round_started >= self.interval:
            self._round_started = now  # at once: a second read before the round begins starts no other
            self._round = asyncio.ensure_future(self.refresh())
        running = self._round is not None and not self._round.done()
        if running and now - self._round_ended > STALE_AFTER_SECONDS:
            assert self._round is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._round), CHECK_TIMEOUT_SECONDS + 0.5)
        return self

    async def close(self) -> None:
        """Stop a round under way (the service is stopping)."""
        if self._round is not None and not self._round.done():
            self._round.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._round

    async def refresh(self) -> None:
        """Run every check once, at the same time; each a Check even if it raised or ran out of time."""
        self._round_started = self._clock()
        names = list(self._probes)
        results = await asyncio.gather(*(_bounded(self._probes[name]) for name in names))
        self.results = dict(zip(names, results, strict=True))
        self._round_ended = self._clock()


async def _bounded(probe: Probe) -> Check:
    try:
        return await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return Check(FAILED, repr(exc))


class ClusterReader:
    """The replication check's admin client, kept from one round to the next (a new one each second would
    be a TLS and SASL handshake each second); after a failed read it is closed, and the next read starts
    a new one."""

    def __init__(self, connection: KafkaConnection) -> None:
        self._connection = connection
        self._admin: AIOKafkaAdminClient | None = None

    async def read(self) -> ClusterTopics:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self._connection.aiokafka_options(), request_timeout_ms=5000)
            try:
                await admin.start()
            except BaseException:
                await _close(admin)
                raise
            self._admin = admin
        try:
            return await describe_cluster_topics(self._admin)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await _close(admin)


async def _close(admin: AIOKafkaAdminClient) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(admin.close(), 2.0)


def service_readiness(
    context: ServiceContext, api_keys: ApiKeys
) -> tuple[ReadinessChecks, Callable[[], Awaitable[None]]]:
    """The readiness checks of a service, and the task that keeps them fresh (and closes their admin
    client when it is cancelled). `api_keys` fails when the keys file gives no key (it fails closed: a
    service that refuses every key of a broken file says so here)."""
    cluster = ClusterReader(kafka_connection(context.settings))

    async def database() -> Check:
        """Reachable, and its writes commit: a server that answers a read may still refuse every write
        (a full disk), which the service's own work has found (common/write_health.py)."""
        async with reading(context.engine) as conn:
            await conn.scalar(select(1))
        problem = context.writes.problem()
        return Check(FAILED, problem) if problem else Check(OK)

    async def broker() -> Check:
        """Reachable; when not, the reason names what the broker last refused a publish with, if it did
        since the last one it accepted (its full disk, too few replicas: common/broker_health.py)."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS - 0.5):  # our reason, not _bounded's
                producer = await context.producer.get()
                await producer.client.fetch_all_metadata()
        except Exception as exc:
            return Check(FAILED, context.producer.refusals.reason(exc))
        return Check(OK)

    async def replication() -> Check:
        try:
            topics = await cluster.read()
        except Exception as exc:
            return Check(FAILED, f"cannot read the topics' replication ({exc!r})")
        problems = problems_in(topics, context.settings.topic_replication_factor)
        return Check(UNDER_REPLICATED, "; ".join(problems)) if problems else Check(OK)

    async def keys() -> Check:
        problem = api_keys.problem()
        return Check(FAILED, problem) if problem else Check(OK)

    checks = ReadinessChecks(
        {"database": database, "broker": broker, "replication": replication, "api_keys": keys}
    )

    async def close_when_stopped() -> None:
        try:
            await asyncio.Event().wait()  # rounds start on demand (`current`); this task only cleans up
        finally:
            await checks.close()
            await cluster.close()

    return checks, close_when_stopped
