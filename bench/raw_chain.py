"""The raw limit: the platform's saga mix done by a minimal aiokafka + psycopg chain, none of our code.

Same shape as the platform: three worker processes (payment, order, delivery), three topics, every
message keyed by order id, one event at a time per worker, and per consumed event one transaction with an
inbox insert, a state row and (when it emits) an outbox row, then the publish with an idempotent
`acks=all` producer and the outbox row's removal. The driver plays the services' HTTP side: the checkout
(payment's transaction: state + outbox row, then the publish) and the customer's cancel (order's). The
same mix as the platform's (`bench.loadgen.MIX`), each kind with the platform's events, the same
terminal ones (`bench.loadgen.TERMINAL`):

    happy         PaymentCompleted → order: OrderPlaced → delivery: DeliveryScheduled, then each carrier
                  step's event (today Shipped, Delivered; auto-progress, each its own transaction) → order:
                  OrderCompleted
    out of stock  PaymentCompleted → order: OrderPlaced → delivery: OutOfStock → order: OrderCancelled
                  → payment: PaymentRefunded (delivery reads OrderCancelled too) → order: REFUNDED
    declined      the checkout's PaymentFailed (no order placed) → order: REJECTED
    cancel        PaymentCompleted → order: OrderPlaced → delivery: DeliveryScheduled (held); once the
                  OrderPlaced is on the topic the driver sends order's OrderCancellationRequested →
                  delivery: CancellationConfirmed → order: OrderCancelled → payment: PaymentRefunded

What the chain cannot know the platform reads from the checkout: an empty shelf (its SKU) and, here only,
that the customer will cancel; every event carries its saga's kind instead. A raw cancel therefore always
reaches delivery before the parcel ships (delivery holds that shipment), and is confirmed and refunded;
on the platform, whose auto-progress ships at once in the bench, most customer cancels arrive after the
parcel has left and are refused (OrderCancellationRequested, CancellationRefused, and the saga completes:
8 events against the raw cancel's 7). Payment refunds in its consumer's transaction, where the platform
queues the refund and its refund worker calls the gateway and records the result in two more.

What it leaves out is what our platform adds: HTTP, Faust, the envelope's validation, the dead-letter
check, the timeline, metrics, the gateway. The ratio of the two throughputs is the price of those.

None of our code runs in its workers. Its rules for the carrier's steps are read, when the module is
imported, from the platform's declarations (the steps from `delivery/lifecycle.py`, the order's status on
each of their events from the saga's happy path in `order/saga.py`), so a step the platform adds is in the
chain's mix as well.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.loadgen import FETCH_HOLD_MS, MIX, Tracker
from common.kafka import new_idempotent_producer
from delivery.lifecycle import STEPS
from order.saga import HAPPY_INPUTS, SOURCES, OrderStatus, happy_path

TOPICS = {"payment": "raw-payment", "order": "raw-order", "delivery": "raw-delivery"}
READS = {"payment": ["raw-order"], "order": ["raw-payment", "raw-delivery"], "delivery": ["raw-order"]}
SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_inbox (consumer text, event_id uuid, PRIMARY KEY (consumer, event_id));
CREATE TABLE IF NOT EXISTS raw_state (
    service text, order_id text, status text, PRIMARY KEY (service, order_id)
);
CREATE TABLE IF NOT EXISTS raw_outbox (id bigserial PRIMARY KEY, topic text, key text, value bytea);
"""
# How long a customer waits for the order to exist before giving up on the cancel (as the platform's).
CANCEL_WAIT_S = 300


def event(type_: str, order_id: str, kind: str) -> bytes:
    return json.dumps(
        {"event_id": str(uuid.uuid4()), "type": type_, "order_id": order_id, "kind": kind}
    ).encode()


class Hop:
    """One service of the chain: its transaction per event, and its outbox published in batches."""

    def __init__(self, service: str, conn: psycopg.AsyncConnection[Any], producer: AIOKafkaProducer) -> None:
        self.service, self.conn, self.producer = service, conn, producer
        self.pending: list[tuple[int, str, bytes]] = []  # outbox rows committed, not yet published

    async def step(
        self, consumed: dict[str, Any] | None, order_id: str, kind: str, status: str, emit: str | None
    ) -> None:
        """One transaction: inbox row (for a consumed event), state row, outbox row (when it emits)."""
        async with self.conn.transaction():
            if consumed is not None:
                await self.conn.execute(
                    "INSERT INTO raw_inbox VALUES (%s, %s)", (self.service, consumed["event_id"])
                )
            await self.conn.execute(
                "INSERT INTO raw_state VALUES (%s, %s, %s) ON CONFLICT (service, order_id) "
                "DO UPDATE SET status = excluded.status",
                (self.service, order_id, status),
            )
            if emit is not None:
                value = event(emit, order_id, kind)
                cursor = await self.conn.execute(
                    "INSERT INTO raw_outbox (topic, key, value) VALUES (%s, %s, %s) RETURNING id",
                    (TOPICS[self.service], order_id, value),
                )
                row = await cursor.fetchone()
                assert row is not None
                self.pending.append((row[0], order_id, value))

    async def publish(self) -> None:
        """Send every pending row (in order), wait for all acknowledgements, then delete the rows."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        topic = TOPICS[self.service]
        futures = [await self.producer.send(topic, value, key=key.encode()) for _, key, value in batch]
        await asyncio.gather(*futures)
        await self.conn.execute(
            "DELETE FROM raw_outbox WHERE id = ANY(%s)", ([row_id for row_id, _, _ in batch],)
        )


@dataclass(frozen=True)
class Step:
    """One transaction of a worker: the state row's new status, and the event it emits (if any)."""

    status: str
    emit: str | None = None


# Auto-progress, as the bench runs the platform's delivery: each step the sweep makes on its own, in the
# carrier's order, each its own transaction (the shipment's status it reaches, the event it emits).
AUTO_STEPS = tuple(
    Step(rules.reached.value, rules.emits.value) for rules in STEPS.values() if rules.auto_progress
)


def order_on_the_carriers_events() -> dict[str, tuple[Step, ...]]:
    """Order's move on each carrier step's event: the status the saga's happy path reaches on it
    (`order.saga.happy_path`); the last, which completes the order, emits OrderCompleted."""
    carrier_events = {rules.emits.value for rules in STEPS.values()}
    moves: dict[str, tuple[Step, ...]] = {}
    for saga_input, status in zip(HAPPY_INPUTS, happy_path(), strict=True):
        source = SOURCES[saga_input]
        if source is not None and source.__name__ in carrier_events:
            completes = status is OrderStatus.COMPLETED
            moves[source.__name__] = (Step(status.value, "OrderCompleted" if completes else None),)
    return moves


# What each worker does with an event: its transactions, in order (the first consumes the event); an
# event type not listed is read and ignored, as the platform's services ignore what they have no
# handler for. Delivery's answer to OrderPlaced depends on the saga's kind (`react`).
RULES: dict[str, dict[str, tuple[Step, ...]]] = {
    "payment": {"OrderCancelled": (Step("REFUNDED", "PaymentRefunded"),)},
    "order": {
        "PaymentCompleted": (Step("PLACED", "OrderPlaced"),),
        "PaymentFailed": (Step("REJECTED"),),
        "DeliveryScheduled": (Step("SCHEDULED"),),
        **order_on_the_carriers_events(),
        "OutOfStock": (Step("CANCELLED", "OrderCancelled"),),
        "CancellationConfirmed": (Step("CANCELLED", "OrderCancelled"),),
        "PaymentRefunded": (Step("REFUNDED"),),
    },
    "delivery": {
        "OrderCancellationRequested": (Step("RELEASED", "CancellationConfirmed"),),
        "OrderCancelled": (Step("CANCELLED"),),  # nothing held any more: the platform's looks and finds so
    },
}
SCHEDULE = Step("SCHEDULED", "DeliveryScheduled")


def react(service: str, type_: str, kind: str) -> tuple[Step, ...]:
    """The transactions `service` makes for an event of `type_` in a saga of `kind`; none: ignored.

    Delivery answers OrderPlaced with OutOfStock on a stock-out, and otherwise schedules and ships at
    once, but for a saga whose customer will cancel: that parcel waits, so the cancel finds it reserved.
    """
    if service == "delivery" and type_ == "OrderPlaced":
        if kind == "out_of_stock":
            return (Step("OUT_OF_STOCK", "OutOfStock"),)
        return (SCHEDULE,) if kind == "cancel" else (SCHEDULE, *AUTO_STEPS)
    return RULES[service].get(type_, ())


# The driver's checkout (payment's HTTP side): the charge is declined, or captured and the saga goes on.
DECLINED, CAPTURED = Step("FAILED", "PaymentFailed"), Step("CAPTURED", "PaymentCompleted")
# The customer's cancel, once the order exists (order's HTTP side).
CANCEL = Step("CANCELLING", "OrderCancellationRequested")


async def worker(service: str, bootstrap: str, dsn: str) -> None:
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    producer = new_idempotent_producer(bootstrap)
    consumer = AIOKafkaConsumer(
        *READS[service],
        bootstrap_servers=bootstrap,
        group_id=f"raw-{service}",
        auto_offset_reset="latest",
        enable_auto_commit=True,
        auto_commit_interval_ms=1000,
        # Held as long as the platform's consumers' (Faust's 1.5 s): the broker answers as soon as a record
        # comes, and a 10 ms hold made each worker fetch a hundred times a second between records.
        fetch_max_wait_ms=FETCH_HOLD_MS,
    )
    await producer.start()
    await consumer.start()
    hop = Hop(service, conn, producer)
    print("ready", flush=True)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    consumed = json.loads(record.value)
                    order_id, kind = consumed["order_id"], consumed["kind"]
                    for index, step in enumerate(react(service, consumed["type"], kind)):
                        # The first transaction consumes the event; delivery's auto-progress steps follow.
                        cause = consumed if index == 0 else None
                        await hop.step(cause, order_id, kind, step.status, step.emit)
            await hop.publish()
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()


async def prepare(bootstrap: str, dsn: str, partitions: int) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(SCHEMA)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        missing = set(TOPICS.values()) - set(await admin.list_topics())
        if missing:
            await admin.create_topics([NewTopic(name, partitions, 1) for name in missing])
    finally:
        await admin.close()


class RawDriver:
    """The driver's side of the chain: what the payment service does for a checkout, and what the order
    service does for a customer's cancel."""

    mix = MIX
    terminal_topics = ("raw-order", "raw-payment")  # OrderCompleted; PaymentRefunded and PaymentFailed

    def __init__(self, bootstrap: str, dsn: str) -> None:
        self.bootstrap, self.dsn = bootstrap, dsn
        self.pool: list[psycopg.AsyncConnection[Any]] = []
        self.free: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()

    async def start(self, connections: int = 8) -> None:
        producer = new_idempotent_producer(self.bootstrap)
        await producer.start()
        self.producer = producer
        for _ in range(connections):
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            self.pool.append(conn)
            self.free.put_nowait(conn)

    async def close(self) -> None:
        for conn in self.pool:
            await conn.close()
        await self.producer.stop()

    async def saga(self, kind: str, tracker: Tracker) -> None:
        order_id = uuid.uuid4().hex
        with tracker.awaiting_answer():  # as the platform's checkouts: waiting for a connection counts
            conn = await self.free.get()
            hop = Hop("payment", conn, self.producer)
            try:
                checkout = DECLINED if kind == "declined" else CAPTURED
                await hop.step(None, order_id, kind, checkout.status, checkout.emit)
            except BaseException:
                self.free.put_nowait(conn)
                raise
        tracker.accept(order_id, kind)  # committed: the platform answers 202 here
        try:
            await hop.publish()
        finally:
            self.free.put_nowait(conn)
        if kind == "cancel":
            await self._cancel(order_id, tracker)

    async def _cancel(self, order_id: str, tracker: Tracker) -> None:
        """The customer cancels as soon as the order exists (its OrderPlaced is on the topic), as the
        platform's driver does; order's transaction and publish, on a connection of the pool."""
        try:
            await asyncio.wait_for(tracker.placed_event(order_id).wait(), CANCEL_WAIT_S)
        except TimeoutError:
            tracker.refused.append(f"order {order_id} was never placed")
            return
        conn = await self.free.get()
        try:
            hop = Hop("order", conn, self.producer)
            await hop.step(None, order_id, "cancel", CANCEL.status, CANCEL.emit)
            await hop.publish()
        finally:
            self.free.put_nowait(conn)


def main() -> None:
    service, bootstrap, dsn = sys.argv[1], sys.argv[2], sys.argv[3]
    started = time.monotonic()
    asyncio.run(worker(service, bootstrap, dsn))
    print(f"stopped after {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
