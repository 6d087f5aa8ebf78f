"""The raw limit: the saga's happy-path hops done by a minimal aiokafka + psycopg chain, none of our code.

Same shape as the platform: three worker processes (payment, order, delivery), three topics, every
message keyed by order id, one event at a time per worker, and per consumed event one transaction with an
inbox insert, a state row and (when it emits) an outbox row, then the publish with an idempotent
`acks=all` producer and the outbox row's removal. The driver plays the checkout: a transaction (state +
outbox row), the PaymentCompleted publish. Delivery ships and delivers at once after scheduling (the
platform's auto-progress mode). Six events per saga, as on the platform's happy path:

    PaymentCompleted → order → OrderPlaced → delivery → DeliveryScheduled, Shipped, Delivered → order
    → OrderCompleted (payment and delivery read it and do nothing, as on the platform)

What it leaves out is what our platform adds: HTTP, Faust, the envelope's validation, the dead-letter
check, the timeline, metrics. The ratio of the two throughputs is the price of those.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.loadgen import Tracker
from common.kafka import new_idempotent_producer

TOPICS = {"payment": "raw-payment", "order": "raw-order", "delivery": "raw-delivery"}
READS = {"payment": ["raw-order"], "order": ["raw-payment", "raw-delivery"], "delivery": ["raw-order"]}
SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_inbox (consumer text, event_id uuid, PRIMARY KEY (consumer, event_id));
CREATE TABLE IF NOT EXISTS raw_state (
    service text, order_id text, status text, PRIMARY KEY (service, order_id)
);
CREATE TABLE IF NOT EXISTS raw_outbox (id bigserial PRIMARY KEY, topic text, key text, value bytea);
"""


def event(type_: str, order_id: str) -> bytes:
    return json.dumps({"event_id": str(uuid.uuid4()), "type": type_, "order_id": order_id}).encode()


class Hop:
    """One service of the chain: its transaction per event, and its outbox published in batches."""

    def __init__(self, service: str, conn: psycopg.AsyncConnection[Any], producer: AIOKafkaProducer) -> None:
        self.service, self.conn, self.producer = service, conn, producer
        self.pending: list[tuple[int, str, bytes]] = []  # outbox rows committed, not yet published

    async def step(
        self, consumed: dict[str, Any] | None, order_id: str, status: str, emit: str | None
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
                value = event(emit, order_id)
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


# What each worker does with an event: (new status, event to emit), or None to ignore it.
RULES: dict[str, dict[str, tuple[str, str | None]]] = {
    "payment": {},
    "order": {
        "PaymentCompleted": ("PLACED", "OrderPlaced"),
        "DeliveryScheduled": ("SCHEDULED", None),
        "Shipped": ("SHIPPED", None),
        "Delivered": ("COMPLETED", "OrderCompleted"),
    },
    "delivery": {"OrderPlaced": ("SCHEDULED", "DeliveryScheduled")},
}


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
        fetch_max_wait_ms=10,
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
                    rule = RULES[service].get(consumed["type"])
                    if rule is None:
                        continue
                    status, emit = rule
                    await hop.step(consumed, consumed["order_id"], status, emit)
                    if service == "delivery":  # auto-progress: ship, then deliver, each its own transaction
                        await hop.step(None, consumed["order_id"], "SHIPPED", "Shipped")
                        await hop.step(None, consumed["order_id"], "DELIVERED", "Delivered")
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
    """The driver's side of the chain: what the payment service does for one checkout."""

    mix = {"happy": 1.0}
    terminal_topics = ("raw-order",)

    def __init__(self, bootstrap: str, dsn: str) -> None:
        self.bootstrap, self.dsn = bootstrap, dsn
        self.pool: list[Hop] = []
        self.free: asyncio.Queue[Hop] = asyncio.Queue()

    async def start(self, connections: int = 8) -> None:
        producer = new_idempotent_producer(self.bootstrap)
        await producer.start()
        self.producer = producer
        for _ in range(connections):
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            hop = Hop("payment", conn, producer)
            self.pool.append(hop)
            self.free.put_nowait(hop)

    async def close(self) -> None:
        for hop in self.pool:
            await hop.conn.close()
        await self.producer.stop()

    async def saga(self, kind: str, tracker: Tracker) -> None:
        order_id = uuid.uuid4().hex
        with tracker.awaiting_answer():  # as the platform's checkouts: waiting for a hop counts
            hop = await self.free.get()
            try:
                await hop.step(None, order_id, "CAPTURED", "PaymentCompleted")
            except BaseException:
                self.free.put_nowait(hop)
                raise
        tracker.accept(order_id)  # committed: the platform answers 202 here
        try:
            await hop.publish()
        finally:
            self.free.put_nowait(hop)


def main() -> None:
    service, bootstrap, dsn = sys.argv[1], sys.argv[2], sys.argv[3]
    started = time.monotonic()
    asyncio.run(worker(service, bootstrap, dsn))
    print(f"stopped after {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
