"""The invariant checker every end-to-end and fault test runs once the system is quiet.

It reads the three service databases and the consumer groups directly: a test's source of truth must not
be the API under test. Each service's books balancing is not enough, so it also checks the business rule
across them: a parcel that shipped belongs to a completed order whose payment was kept, and a cancelled
order holds and ships nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiokafka.errors import KafkaError

from common.services import SERVICES
from common.tenancy import order_id_of, owner_of
from delivery.lifecycle import STATUSES, Stock
from order.handlers import INPUT_OF
from order.saga import Outcome, SagaInput, decide
from saga_tools.ops.groups import group_lag

TERMINAL_OR_VISIBLE_FAILURE = {"COMPLETED", "REJECTED", "REFUNDED", "REFUND_FAILED"}
CANCELLED = {"CANCELLED", "REFUNDED", "REFUND_FAILED"}
# What each shipment status holds of the stock, as delivery declares it (`delivery/lifecycle.py`).
RESERVED = {status.value for status, rules in STATUSES.items() if rules.stock is Stock.RESERVED}
LEFT_THE_WAREHOUSE = {status.value for status, rules in STATUSES.items() if rules.stock is Stock.SHIPPED}
HOLDS_STOCK = RESERVED | LEFT_THE_WAREHOUSE
# The violation the business cannot accept, counted on its own by the fault suite.
SHIPPED_AND_REFUNDED = "business: shipped and refunded"


def _plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _rows(url: str, query: str) -> list[Any]:
    with psycopg.connect(_plain_url(url)) as conn:
        return conn.execute(query).fetchall()


@dataclass
class Report:
    orders_by_status: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.violations, "invariants violated:\n" + "\n".join(self.violations)


def check_invariants(
    database_urls: dict[str, str], bootstrap: str, in_flight: Collection[str] = ()
) -> Report:
    """The invariants across the three services; `in_flight` names sagas a test leaves unfinished on
    purpose (they are neither terminal nor counted in the books)."""
    report = Report()
    pay, ord_, dlv = database_urls["payment"], database_urls["order"], database_urls["delivery"]

    orders = {
        row[0]: row for row in _rows(ord_, "SELECT order_id, status, amount_minor, cancellation FROM orders")
    }
    report.orders_by_status.update(row[1] for row in orders.values())
    payments = [
        p for p in _rows(pay, "SELECT order_id, status, amount_minor FROM payments") if p[0] not in in_flight
    ]

    # Every accepted checkout ends in exactly one terminal (or visible failure) state.
    for order_id, status, _amount in payments:
        if status == "PENDING":
            report.violations.append(f"payment of {order_id} still PENDING")
            continue
        order = orders.get(order_id)
        if order is None:
            report.violations.append(f"payment of {order_id} ({status}) has no order")
        elif order[1] not in TERMINAL_OR_VISIBLE_FAILURE:
            report.violations.append(f"order {order_id} is {order[1]}, not terminal")

    # Money is conserved.
    charged = sum(a for _, s, a in payments if s in ("CAPTURED", "REFUNDED", "REFUND_FAILED"))
    refunded = sum(r[0] for r in _rows(pay, "SELECT amount_minor FROM refunds WHERE status = 'SUCCEEDED'"))
    stuck = sum(a for _, s, a in payments if s == "REFUND_FAILED")
    completed = sum(o[2] for o in orders.values() if o[1] == "COMPLETED")
    if charged - refunded != completed + stuck:
        report.violations.append(
            f"money: charged {charged} - refunded {refunded} != completed {completed} + refund failed {stuck}"
        )
    for order_id, count in _rows(
        pay, "SELECT order_id, count(*) FROM refunds GROUP BY order_id HAVING count(*) > 1"
    ):
        report.violations.append(f"order {order_id} refunded {count} times")
    refund_status = dict(_rows(pay, "SELECT order_id, status FROM refunds"))
    for order_id, (_, status, _amount, _cancellation) in orders.items():
        if status == "REFUNDED" and refund_status.get(order_id) != "SUCCEEDED":
            report.violations.append(f"order {order_id} REFUNDED without a successful refund")

    # Stock is conserved and matches the shipments.
    stock = {r[0]: r for r in _rows(dlv, "SELECT sku, on_hand, reserved, shipped, stocked FROM stock")}
    for sku, on_hand, reserved, shipped, stocked in stock.values():
        if min(on_hand, reserved, shipped) < 0 or on_hand + reserved + shipped != stocked:
            report.violations.append(f"stock of {sku}: {on_hand}+{reserved}+{shipped} != {stocked}")
    expected_reserved: Counter[str] = Counter()
    expected_shipped: Counter[str] = Counter()
    for status, lines in _rows(dlv, "SELECT status, lines FROM shipments"):
        target = expected_reserved if status in RESERVED else expected_shipped
        if status in HOLDS_STOCK:
            for line in lines:
                target[line["sku"]] += line["quantity"]
    for sku, row in stock.items():
        if row[2] != expected_reserved[sku] or row[3] != expected_shipped[sku]:
            report.violations.append(
                f"stock of {sku}: reserved {row[2]} / shipped {row[3]}, shipments say "
                f"{expected_reserved[sku]} / {expected_shipped[sku]}"
            )

    report.violations.extend(
        business_rule_violations(
            orders, {order_id: status for order_id, status, _ in payments}, refund_status, dlv
        )
    )

    # No illegal transition was applied: replay every recorded input through the pure state machine.
    timeline = _rows(
        ord_,
        "SELECT order_id, kind, event_type, status_before, status_after FROM order_timeline "
        "WHERE kind IN ('received', 'requested') ORDER BY id",
    )
    inputs = {**{t.value: t for t in SagaInput}, **INPUT_OF}
    for order_id, _kind, event_type, before, after in timeline:
        saga_input = inputs.get(event_type)
        if saga_input is None:
            report.violations.append(f"order {order_id}: unknown input {event_type} on the timeline")
            continue
        decision = decide(before, saga_input)
        if decision.outcome is Outcome.APPLIED and decision.new_status != after:
            report.violations.append(f"order {order_id}: {before} + {event_type} recorded as {after}")

    report.violations.extend(shop_told_violations(ord_, orders, timeline))

    # Outboxes are empty and every consumer group is at the end of its topics.
    for service, url in database_urls.items():
        (pending,) = _rows(url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0]
        if pending:
            report.violations.append(f"{service} outbox has {pending} unpublished rows")
    lag = asyncio.run(consumer_lag(bootstrap))
    for group, value in lag.items():
        if value:
            report.violations.append(f"consumer group {group} lags by {value}")
    return report


# Events that answer a cancellation; every other shop event reports a new status.
_ANSWERS = {"order.cancellation_confirmed", "order.cancellation_refused"}


def shop_told_violations(order_url: str, orders: dict[str, Any], timeline: list[Any]) -> list[str]:
    """What each shop was told matches what happened to its orders (order/webhooks): an order's events
    are numbered 1, 2, 3… without a gap, one per change of its status on the timeline, and the last one
    shows the status the order has."""
    told: dict[str, list[tuple[int, str, str]]] = {}
    for order_id, seq, event_type, status in _rows(
        order_url,
        "SELECT order_id, seq, type, order_snapshot->>'status' FROM shop_events ORDER BY order_id, seq",
    ):
        told.setdefault(order_id, []).append((seq, event_type, status))
    changes = Counter(order_id for order_id, _kind, _type, before, after in timeline if after != before)
    violations = []
    for order_id, row in orders.items():
        events = told.get(order_id, [])
        if [seq for seq, _, _ in events] != list(range(1, len(events) + 1)):
            violations.append(f"shop told: order {order_id}'s events are numbered {[e[0] for e in events]}")
        if not events or events[-1][2] != row[1]:
            last = events[-1][2] if events else "nothing"
            violations.append(f"shop told: order {order_id} is {row[1]}, its shop was last told {last}")
        entered = sum(1 for _, event_type, _ in events if event_type not in _ANSWERS)
        if entered != changes[order_id]:
            violations.append(
                f"shop told: order {order_id} changed status {changes[order_id]} times, told {entered}"
            )
    return violations


def business_rule_violations(
    orders: dict[str, Any], payment_status: dict[str, str], refund_status: dict[str, str], delivery_url: str
) -> list[str]:
    """The rule across the three services that each one's books cannot show on their own.

    - A parcel that shipped belongs to an order that is SHIPPED or COMPLETED, whose payment is captured
      and never refunded (not even a refund pending or failed).
    - A cancelled order (or one whose cancel delivery confirmed) holds no reservation and shipped nothing.
    - A COMPLETED order's parcel was delivered.
    """
    violations = []
    shipments = dict(_rows(delivery_url, "SELECT order_id, status FROM shipments"))
    for order_id, shipment in shipments.items():
        if shipment not in LEFT_THE_WAREHOUSE:
            continue
        order = orders.get(order_id)
        order_status = order[1] if order is not None else None
        if order_id in refund_status or payment_status.get(order_id) != "CAPTURED":
            money = f"payment {payment_status.get(order_id)}, refund {refund_status.get(order_id)}"
            violations.append(
                f"{SHIPPED_AND_REFUNDED}: order {order_id} {shipment} ({money}), order {order_status}"
            )
        elif order_status not in ("SHIPPED", "COMPLETED"):
            violations.append(f"business: order {order_id} is {order_status} but its parcel is {shipment}")
    for order_id, (_, status, _amount, cancellation) in orders.items():
        shipment = shipments.get(order_id)
        if (status in CANCELLED or cancellation == "confirmed") and shipment in HOLDS_STOCK:
            violations.append(
                f"business: order {order_id} is {status} (cancellation {cancellation}) but its shipment is"
                f" {shipment}"
            )
        if status == "COMPLETED" and shipment != "DELIVERED":
            violations.append(f"business: order {order_id} is COMPLETED but its shipment is {shipment}")
    return violations


def shop_books_violations(
    database_urls: dict[str, str], checkouts: Mapping[str, Collection[str]]
) -> list[str]:
    """Each shop's books held apart: `checkouts` names every shop's accepted checkouts (the order ids it
    was given). A shop's orders are exactly its checkouts, no more and no fewer; its money balances on
    its own (charged - refunded = completed + refund failed, over its payments alone); its refunds are
    of its own orders; and every event it was told (its webhook feed) is about one of its own orders."""
    violations = []
    pay, ord_ = database_urls["payment"], database_urls["order"]
    orders = _rows(ord_, "SELECT order_id, status, amount_minor FROM orders")
    payments = _rows(pay, "SELECT order_id, status, amount_minor FROM payments")
    refunds = _rows(pay, "SELECT order_id, amount_minor FROM refunds WHERE status = 'SUCCEEDED'")
    for owner in sorted({owner_of(saga) for saga, *_ in orders + payments} - set(checkouts)):
        violations.append(f"books: orders of {owner}, which is none of the shops {sorted(checkouts)}")
    for shop, accepted in checkouts.items():
        own = {order_id_of(saga) for saga, *_ in orders if owner_of(saga) == shop}
        if own != set(accepted):
            extra, missing = sorted(own - set(accepted))[:5], sorted(set(accepted) - own)[:5]
            violations.append(
                f"books of {shop}: orders not its checkouts {extra}, checkouts missing {missing}"
            )
        mine = [row for row in payments if owner_of(row[0]) == shop]
        charged = sum(a for _, s, a in mine if s in ("CAPTURED", "REFUNDED", "REFUND_FAILED"))
        stuck = sum(a for _, s, a in mine if s == "REFUND_FAILED")
        refunded = sum(a for saga, a in refunds if owner_of(saga) == shop)
        completed = sum(a for saga, s, a in orders if owner_of(saga) == shop and s == "COMPLETED")
        if charged - refunded != completed + stuck:
            violations.append(
                f"books of {shop}: charged {charged} - refunded {refunded} != completed {completed}"
                f" + refund failed {stuck}"
            )
        strangers = [saga for saga, _ in refunds if owner_of(saga) == shop and order_id_of(saga) not in own]
        if strangers:
            violations.append(f"books of {shop}: refunds of orders it never placed {strangers[:5]}")
    for owner, saga in _rows(ord_, "SELECT owner, order_id FROM shop_events"):
        if owner_of(saga) != owner:
            violations.append(f"books: {owner} was told about {saga}, an order of {owner_of(saga)}")
    return violations


async def consumer_lag(bootstrap: str) -> dict[str, int]:
    """Messages each service's consumer group has not committed yet, summed over its topics."""
    return {
        spec.name: await group_lag(bootstrap, spec.group_id, spec.consumed_topics)
        for spec in SERVICES.values()
    }


def wait_until_quiet(
    database_urls: dict[str, str], bootstrap: str, timeout: float = 60.0, in_flight: Collection[str] = ()
) -> Report:
    """Poll the invariants until they hold (the system settled) or the time is up; return the last report.

    A broker that cannot answer yet (a node lost moments ago, its groups' coordinator moving) is one more
    reason the system is not quiet, not a verdict.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            report = check_invariants(database_urls, bootstrap, in_flight)
        except KafkaError as error:
            report = Report(violations=[f"the broker cannot answer yet: {error!r}"])
        if not report.violations or time.monotonic() > deadline:
            return report
        time.sleep(0.5)
