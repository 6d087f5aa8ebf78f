"""The fault-suite harness: a private stack, services as real processes, a shop-like load, a summary.

Each fault test gets its own Kafka and PostgreSQL (faults must not leak into other tests), runs a steady
stream of checkouts with mixed outcomes while it injects its fault, waits until the system is quiet, and
checks the invariants (`tests/invariants.py`).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaProducer

from common.config import Service, Settings, load_settings
from common.kafka import ensure_topics
from common.service_apis import bearer
from common.services import SERVICES
from common.tenancy import saga_id
from saga_tools import migrations
from saga_tools.local_stack.ports import free_port, wait_for_port
from saga_tools.local_stack.stack import LocalStack
from saga_tools.ops.groups import commit_moves, partition_states
from saga_tools.ops.offsets import ToBeginning, plan_replay
from saga_tools.supervisor import LOCAL_WEBHOOKS, ServiceProcess, stop_all
from tests.chaos.partition import Partitions
from tests.chaos.peer_links import PeerLinks
from tests.invariants import SHIPPED_AND_REFUNDED, Report, shop_books_violations, wait_until_quiet
from tests.keys import SUITE_SHOP, suite_headers, suite_key_environment

SAGAS = int(os.environ.get("CHAOS_SAGAS", "60"))
RATE = float(os.environ.get("CHAOS_RATE", "6"))  # sagas started per second: a steady stream, not a burst
# Seconds between faults is multiplied by this. Each SIGKILLed consumer stalls its group for the 10 s session
# timeout, so a long run spaces kills out (e.g. 4) or the groups never get to work between two stalls.
FAULT_SPACING = float(os.environ.get("CHAOS_FAULT_SPACING", "1"))
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
KIND_WEIGHTS = {"happy": 70, "out_of_stock": 10, "declined": 10, "cancel": 10}
# A cancel happens this many seconds after the checkout's 202 (drawn uniformly), 0: at once.
CANCEL_AFTER = (0.0, 0.0)
EXPECTED = {
    "happy": {"COMPLETED"},
    "out_of_stock": {"REFUNDED"},
    "declined": {"REJECTED"},
    "cancel": {"REFUNDED", "COMPLETED"},  # COMPLETED when the parcel shipped before the cancel arrived
}


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@dataclass
class ChaosStack:
    stack: LocalStack
    env: dict[str, str]
    settings: Settings
    state: Path
    workers: dict[Service, list[ServiceProcess]] = field(default_factory=dict)
    provider: subprocess.Popen[bytes] | None = None
    provider_url: str | None = None
    partitions: Partitions | None = None  # links the test can cut, between chosen services and servers
    peer_links: PeerLinks | None = None  # links the test can cut, between the Kafka nodes

    @property
    def bootstrap(self) -> str:
        return self.stack.kafka_bootstrap_servers

    @property
    def database_urls(self) -> dict[str, str]:
        return {s.value: self.stack.database_url(s) for s in Service}

    def url(self, service: Service) -> str:
        return self.workers[service][0].base_url

    def spawn_worker(self, service: Service) -> ServiceProcess:
        """Start one more worker of `service`, on the record (stopped with the stack) but not yet ready."""
        index = len(self.workers.setdefault(service, []))
        env = {**self.env, SERVICES[service].http_port_variable: str(free_port())}
        if self.partitions is not None:
            env.update(self.partitions.environment(service))
        if service is Service.ORDER:
            # Order asks payment about checkouts it has not recorded yet; payment's workers start first.
            env["ORDER_PAYMENT_API_URL"] = self.url(Service.PAYMENT)
        settings = Settings.model_validate(env)
        worker = ServiceProcess(
            service,
            env=env,
            log_path=self.state / f"{service.value}-{index}.log",
            base_url=settings.base_url(service),
        )
        worker.start()
        self.workers[service].append(worker)
        return worker

    def revive(self, worker: ServiceProcess) -> None:
        if not worker.running:
            worker.start()
            worker.wait_ready(timeout=90)

    def revive_all(self) -> None:
        for workers in self.workers.values():
            for worker in workers:
                self.revive(worker)

    def stop(self) -> None:
        stop_all(worker for workers in self.workers.values() for worker in workers)
        if self.provider is not None:
            self.provider.terminate()
            self.provider.wait()
        self.stack.stop()
        if self.partitions is not None:
            self.partitions.close()
        if self.peer_links is not None:
            self.peer_links.close()

    def duplicates_seen(self) -> int:
        total = 0
        for url in self.database_urls.values():
            with psycopg.connect(_plain(url)) as conn:
                row = conn.execute("SELECT coalesce(sum(duplicates), 0) FROM consumer_counters").fetchone()
            total += int(row[0]) if row else 0
        return total

    def dead_letters(self, service: Service) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.url(service)}/dead-letters", params={"status": "all"}, timeout=10, headers=suite_headers()
        )
        response.raise_for_status()
        return list(response.json()["items"])

    def provider_control(self, **modes: str) -> None:
        assert self.provider_url, "this stack runs no external provider"
        httpx.post(f"{self.provider_url}/_control", json=modes, timeout=5).raise_for_status()

    def readiness(self, service: Service) -> tuple[int, dict[str, str]]:
        """A service's /readyz as an operator reads it (with reasons): its status and its checks."""
        answer = httpx.get(f"{self.url(service)}/readyz", headers=suite_headers(), timeout=5)
        return answer.status_code, dict(answer.json()["checks"])

    def provider_state(self) -> dict[str, Any]:
        assert self.provider_url
        return dict(httpx.get(f"{self.provider_url}/_state", timeout=5).json())


@contextmanager
def chaos_stack(
    tmp: Path,
    *,
    kafka_nodes: int = 1,
    workers: dict[Service, int] | None = None,
    external_provider: bool = False,
    extra_env: dict[str, str] | None = None,
    cut_from_broker: Collection[Service] = (),
    cut_from_database: Collection[Service] = (),
    brokers_apart: bool = False,
) -> Iterator[ChaosStack]:
    """`cut_from_broker`, `cut_from_database`: services whose traffic to that server crosses a link the
    test can cut, delay or make lossy (`ChaosStack.partitions`, tests/chaos/partition.py);
    `brokers_apart`: the three Kafka nodes reach each other only across links the test can cut
    (`ChaosStack.peer_links`, tests/chaos/peer_links.py)."""
    assert not brokers_apart or kafka_nodes == 3, "links between brokers need three of them"
    partitions = Partitions(cut_from_broker, cut_from_database)
    peer_links = PeerLinks(kafka_nodes) if brokers_apart else None
    stack = LocalStack(
        load_settings(),
        kafka_nodes=kafka_nodes,
        state_dir=tmp / "stack",
        kafka_listeners=partitions.kafka_listeners(),
        kafka_peer_route=peer_links.route if peer_links is not None else None,
    )
    try:
        stack.start()
        if cut_from_database:
            assert stack.postgres is not None, "a database link needs the local PostgreSQL"
            partitions.connect_databases(stack.postgres)
    except BaseException:
        partitions.close()
        if peer_links is not None:
            peer_links.close()
        raise
    env = {
        LOCAL_WEBHOOKS: "true",
        **os.environ,
        **stack.environment(),
        "SAGA_STATE_DIR": str(tmp / "services"),
        "DELIVERY_AUTO_PROGRESS_SECONDS": "0.3",
        "ORDER_DELIVERY_DEADLINE_SECONDS": "60",
        "PAYMENT_GATEWAY_TIMEOUT_SECONDS": "0.5",
        "SAGA_LOG_LEVEL": "warning",
        **suite_key_environment(),
        **(extra_env or {}),
    }
    chaos = ChaosStack(
        stack=stack,
        env=env,
        settings=Settings.model_validate(env),
        state=tmp / "logs",
        partitions=partitions,
        peer_links=peer_links,
    )
    try:
        if external_provider:
            port = free_port()
            chaos.provider = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.provider", str(port)], stdout=subprocess.DEVNULL
            )
            assert wait_for_port(port, 30), "the fake payment provider did not start"
            chaos.provider_url = f"http://127.0.0.1:{port}"
            chaos.env.update({"PAYMENT_GATEWAY": "http", "PAYMENT_GATEWAY_URL": chaos.provider_url})
        for service in Service:
            migrations.upgrade(service, chaos.database_urls[service.value])
        asyncio.run(ensure_topics(chaos.settings))
        # Every worker started at once, then each waited for: one after the other, their imports and
        # their joins of the consumer groups took ~7 s of every fault test (payment's are spawned first,
        # so order is given their address; order calls payment only once a checkout comes).
        spawned = [
            chaos.spawn_worker(service) for service in Service for _ in range((workers or {}).get(service, 1))
        ]
        for worker in spawned:
            worker.wait_ready(timeout=90)
        yield chaos
    finally:
        chaos.stop()


@dataclass
class Saga:
    order_id: str
    kind: str
    accepted_at: float = 0.0  # when the checkout was answered (this process's monotonic clock)


class ShopLoad:
    """Checkouts like a real shop backend sends them: retried with the same key until answered."""

    def __init__(
        self,
        chaos: ChaosStack,
        sagas: int = SAGAS,
        concurrency: int = 4,
        seed: int = 7,
        *,
        kinds: dict[str, int] = KIND_WEIGHTS,
        cancel_after: tuple[float, float] = CANCEL_AFTER,
        shop_key: str | None = None,
        operator_key: str | None = None,
        shop: str = SUITE_SHOP,
        rate: float = RATE,
    ) -> None:
        """`shop`: the name of the key the checkouts are sent with (`shop_key`'s; the suite's by default),
        the owner of the orders they make; `rate`: checkouts started per second."""
        self.chaos = chaos
        self.shop = shop
        self.rate = rate
        # As a shop and its operator would (the suite's key, with every scope, unless given theirs).
        self.shop_headers = bearer(shop_key) if shop_key else suite_headers()
        self.operator_headers = bearer(operator_key) if operator_key else suite_headers()
        self.sagas = sagas
        self.kinds = kinds
        self.cancel_after = cancel_after
        self.cancels: Counter[int] = Counter()  # answers to the customers' cancels, by status
        self.concurrency = concurrency
        self.random = random.Random(seed)
        self.accepted: list[Saga] = []
        self.errors: list[str] = []
        self.retries = 0
        # What the platform answered, as a shop sees it: every status (a 500 is a defect, whatever the
        # fault), 503s without a Retry-After, requests that hung past the client's timeout, and each
        # checkout's answer with when it came (monotonic), to tell what it answered during a fault.
        self.statuses: Counter[int] = Counter()
        self.unavailable_without_retry_after = 0
        self.hung = 0
        self.checkout_calls: list[tuple[float, float, int]] = []  # (sent at, answered at, status)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.plenty = f"PLENTY-{uuid.uuid4().hex[:6]}"
        self.none = f"NONE-{uuid.uuid4().hex[:6]}"

    def stock(self) -> None:
        with httpx.Client(timeout=10, headers=self.operator_headers) as http:
            for sku, units in ((self.plenty, 1_000_000), (self.none, 0)):
                self._call(http, "PUT", Service.DELIVERY, f"/inventory/{sku}", json={"on_hand": units})

    def start(self) -> None:
        self.stock()
        kinds = self.random.choices(list(self.kinds), weights=list(self.kinds.values()), k=self.sagas)
        self._thread = threading.Thread(target=self._run, args=(kinds,), daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float = 600) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the load did not finish"
        assert not self.errors, "the platform refused valid requests:\n" + "\n".join(self.errors[:10])

    def _run(self, kinds: list[str]) -> None:
        chunks = [kinds[i :: self.concurrency] for i in range(self.concurrency)]
        threads = [threading.Thread(target=self._run_chunk, args=(chunk,)) for chunk in chunks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _run_chunk(self, kinds: list[str]) -> None:
        interval = self.concurrency / self.rate
        with httpx.Client(timeout=10, headers=self.shop_headers) as http:
            for index, kind in enumerate(kinds):
                started = time.monotonic()
                try:
                    self._one(http, kind)
                except Exception as exc:  # recorded and reported by wait()
                    with self._lock:
                        self.errors.append(f"{kind}: {exc!r}")
                if index + 1 < len(kinds):
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def _one(self, http: httpx.Client, kind: str) -> None:
        sku = self.none if kind == "out_of_stock" else self.plenty
        body = {
            "customer_id": "chaos",
            "currency": "EUR",
            "payment_method": "tok_declined" if kind == "declined" else "tok_visa",
            "lines": [{"sku": sku, "quantity": 1 + len(self.accepted) % 3, "unit_price_minor": 999}],
            "shipping_address": ADDRESS,
        }
        answer = self._call(
            http,
            "POST",
            Service.PAYMENT,
            "/checkout",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        with self._lock:
            self.accepted.append(Saga(answer["order_id"], kind, time.monotonic()))
            delay = self.random.uniform(*self.cancel_after)
        if kind == "cancel":
            time.sleep(delay)
            cancel = f"/orders/{answer['order_id']}/cancel"
            answered = self._call(http, "POST", Service.ORDER, cancel, accept=(202, 409))
            with self._lock:
                self.cancels[409 if "error" in answered else 202] += 1

    def _call(
        self,
        http: httpx.Client,
        method: str,
        service: Service,
        path: str,
        accept: tuple[int, ...] = (200, 202),
        **kwargs: Any,
    ) -> Any:
        """Retry through outages (refused connections, 503) for a while. A 404 is an error: an order the
        shop was told about (a 202) is never unknown, not even before the order service has seen it."""
        deadline = time.monotonic() + 180
        while True:
            try:
                sent = time.monotonic()
                response = http.request(method, f"{self.chaos.url(service)}{path}", **kwargs)
                self._record(response, checkout=path == "/checkout", sent=sent)
                if response.status_code in accept:
                    return response.json()
                if response.status_code not in (500, 502, 503) or time.monotonic() > deadline:
                    raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.TimeoutException):
                    with self._lock:
                        self.hung += 1
                if time.monotonic() > deadline:
                    raise
            with self._lock:
                self.retries += 1
            time.sleep(0.2)

    def _record(self, response: httpx.Response, *, checkout: bool, sent: float) -> None:
        answered = time.monotonic()
        with self._lock:
            self.statuses[response.status_code] += 1
            if response.status_code == 503 and "Retry-After" not in response.headers:
                self.unavailable_without_retry_after += 1
            if checkout:
                self.checkout_calls.append((sent, answered, response.status_code))

    def checkouts_between(self, start: float, end: float) -> Counter[int]:
        """The checkout's answers that came between two monotonic instants, by status."""
        with self._lock:
            return Counter(status for _, at, status in self.checkout_calls if start <= at < end)

    def checkouts_sent_and_answered_between(self, start: float, end: float) -> Counter[int]:
        """The answers, by status, to the checkouts sent at or after `start` and answered before `end`: what
        a shop sent once a fault had begun. (One sent just before may still be committed, and answered
        a moment into the fault.)"""
        with self._lock:
            return Counter(
                status for sent, answered, status in self.checkout_calls if start <= sent and answered < end
            )

    def first_checkout_accepted_after(self, instant: float) -> float | None:
        with self._lock:
            return next(
                (at for _, at, status in self.checkout_calls if at >= instant and status == 202), None
            )


@dataclass
class FaultResult:
    name: str
    sagas: int
    faults: int
    duplicates: int
    doubled: int
    lost: int
    shipped_and_refunded: int
    recovery_seconds: float
    report: Report

    def line(self) -> str:
        figures = {
            "sagas": self.sagas,
            "faults": self.faults,
            "duplicate_deliveries": self.duplicates,
            "effects_doubled": self.doubled,
            "sagas_lost": self.lost,
            "shipped_and_refunded": self.shipped_and_refunded,
            "recovered_in": f"{self.recovery_seconds:.1f}s",
        }
        return f"FAULT {self.name}: " + " ".join(f"{key}={value}" for key, value in figures.items())


DOUBLING = ("money:", "refunded", "stock of", "recorded as")


def settle(
    chaos: ChaosStack,
    load: ShopLoad | Sequence[ShopLoad],
    name: str,
    faults: int,
    timeout: float = 180,
    expected: dict[str, set[str]] = EXPECTED,
) -> FaultResult:
    """Bring every process back, wait until quiet, and judge the run (`expected`: the end states each
    kind of saga may reach under this fault). With several loads (shops), each shop's books are also
    checked on their own (`shop_books_violations`)."""
    loads = [load] if isinstance(load, ShopLoad) else list(load)
    for each in loads:
        each.wait()
    chaos.revive_all()
    began = time.monotonic()
    report = wait_until_quiet(chaos.database_urls, chaos.bootstrap, timeout=timeout)
    recovery = time.monotonic() - began
    if len(loads) > 1:
        checkouts = {each.shop: [saga.order_id for saga in each.accepted] for each in loads}
        report.violations.extend(shop_books_violations(chaos.database_urls, checkouts))
    statuses = _statuses(chaos)
    lost = [
        (saga_id(each.shop, s.order_id), s.kind)
        for each in loads
        for s in each.accepted
        if statuses.get(saga_id(each.shop, s.order_id)) not in expected[s.kind]
    ]
    doubled = [v for v in report.violations if v.startswith(DOUBLING)]
    result = FaultResult(
        name=name,
        sagas=sum(len(each.accepted) for each in loads),
        faults=faults,
        duplicates=chaos.duplicates_seen(),
        doubled=len(doubled),
        lost=len(lost),
        shipped_and_refunded=sum(v.startswith(SHIPPED_AND_REFUNDED) for v in report.violations),
        recovery_seconds=recovery,
        report=report,
    )
    print(f"\n{result.line()}")
    (chaos.state.parent / "summary.txt").write_text(result.line() + "\n")
    assert not lost, f"{len(lost)} sagas lost or wrong: " + ", ".join(
        f"{saga}({kind})={statuses.get(saga)}" for saga, kind in lost[:10]
    )
    report.assert_clean()
    return result


def _statuses(chaos: ChaosStack) -> dict[str, str]:
    """Each order's status by its saga id (owner:order_id, common/tenancy.py)."""
    with psycopg.connect(_plain(chaos.database_urls["order"])) as conn:
        rows = conn.execute("SELECT order_id, status FROM orders").fetchall()
    return dict(rows)


def sleep_while(seconds: float, while_: Callable[[], bool]) -> None:
    """Sleep `seconds`, or less once `while_()` turns false: a wait between faults that its caller ends
    when the load is over (the fault would not be made then), without sleeping out the rest."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and while_():
        time.sleep(min(0.1, left))


def every(seconds: float, while_: Callable[[], bool], action: Callable[[], None], jitter: float = 0.5) -> int:
    """Run `action` every `seconds` times FAULT_SPACING (± jitter) while `while_()`; returns the count."""
    seconds *= FAULT_SPACING
    count = 0
    rng = random.Random(11)
    while while_():
        sleep_while(seconds * (1 + rng.uniform(-jitter, jitter)), while_)
        if not while_():
            break
        action()
        count += 1
    return count


async def rewind_group(bootstrap: str, service: Service) -> int:
    """Rewind the service's group to the beginning of every topic; returns how many events it sees again."""
    spec = SERVICES[service]
    group = spec.group_id
    moves = plan_replay(await partition_states(bootstrap, group, spec.consumed_topics), ToBeginning())
    await commit_moves(bootstrap, group, moves)
    return sum(move.replayed for move in moves)


async def produce_raw(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def order_statuses(chaos: ChaosStack) -> Counter[str]:
    return Counter(_statuses(chaos).values())
