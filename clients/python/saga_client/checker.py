"""The saga's invariants, checked through the public HTTP APIs only.

It reads nothing but what the platform's operator may read (orders, payments, shipments, stock, dead
letters: give it a client with the operator's key, `ClientConfig.acting_as(Role.OPERATOR)`), so it
works against a platform it did not start. It checks the checkouts it is given (by order id) and the
SKUs it is given, nothing else, so other users of the same platform do not disturb it:

- every accepted checkout ended: COMPLETED, REJECTED or REFUNDED, or a visible REFUND_FAILED; its
  payment is not PENDING, and none of its events is parked as a dead letter in any service;
- money is conserved, per order and in total: captured - refunded = value of the COMPLETED orders +
  the REFUND_FAILED payments; a refund returns the whole amount, once (the order received
  PaymentRefunded at most once and REFUNDED means a successful refund);
- the pivot: a parcel that shipped belongs to a SHIPPED or COMPLETED order whose payment was captured
  and never refunded; a cancelled order (or a confirmed cancel) holds and ships nothing; a COMPLETED
  order's parcel was delivered;
- stock is conserved: on hand + reserved + shipped = stocked, nothing negative; and, for SKUs used
  only by the given checkouts (`exclusive_skus`), reserved and shipped equal what their shipments hold.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from saga_client.client import SagaClient
from saga_client.config import Service
from saga_client.errors import NotFound
from saga_client.models import (
    CARRIER_STEPS,
    SETTLED,
    Cancellation,
    OrderDetail,
    OrderStatus,
    Payment,
    PaymentStatus,
    RefundStatus,
    Shipment,
    ShipmentStatus,
)

CHARGED = {PaymentStatus.CAPTURED, PaymentStatus.REFUNDED, PaymentStatus.REFUND_FAILED}
# What a parcel holds of the stock in each status: SCHEDULED reserves, and each carrier step says.
RESERVED = {ShipmentStatus.SCHEDULED, *(step.reached for step in CARRIER_STEPS if step.holds == "reserved")}
LEFT_THE_WAREHOUSE = {step.reached for step in CARRIER_STEPS if step.holds == "shipped"}
HOLDS_STOCK = RESERVED | LEFT_THE_WAREHOUSE
CANCELLED = {OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.REFUND_FAILED}


@dataclass
class Report:
    """What the check found: each order's status, and every broken invariant in words."""

    statuses: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        counts = Counter(self.statuses.values())
        return ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "no orders"


@dataclass
class _Saga:
    order: OrderDetail
    payment: Payment
    shipment: Shipment | None


def check(
    client: SagaClient, order_ids: Iterable[str], skus: Iterable[str] = (), *, exclusive_skus: bool = True
) -> Report:
    """The invariants (module docstring) over these checkouts and SKUs, read once."""
    report = Report()
    sagas: dict[str, _Saga] = {}
    for order_id in sorted(set(order_ids)):
        saga = _read(client, order_id, report)
        if saga is not None:
            sagas[order_id] = saga
    for order_id, saga in sagas.items():
        report.statuses[order_id] = saga.order.status
        report.violations.extend(_ended(client, order_id, saga))
        report.violations.extend(_money(order_id, saga))
        report.violations.extend(_pivot(order_id, saga))
    report.violations.extend(_total_money(sagas))
    report.violations.extend(_stock(client, sorted(set(skus)), sagas, exclusive_skus))
    return report


def wait_until_consistent(
    client: SagaClient,
    order_ids: Iterable[str],
    skus: Iterable[str] = (),
    *,
    timeout: float = 30.0,
    exclusive_skus: bool = True,
) -> Report:
    """`check` until it finds nothing (sagas still running settle meanwhile) or `timeout` passed; the
    last report."""
    order_ids, skus = list(order_ids), list(skus)
    deadline = time.monotonic() + timeout
    while True:
        report = check(client, order_ids, skus, exclusive_skus=exclusive_skus)
        if report.consistent or time.monotonic() > deadline:
            return report
        time.sleep(0.25)


def _read(client: SagaClient, order_id: str, report: Report) -> _Saga | None:
    try:
        payment = client.payment(order_id)
    except NotFound:
        return None  # payment never accepted this checkout (refused, or never arrived): nothing to check
    try:
        order = client.order(order_id)
    except NotFound:
        report.violations.append(
            f"order {order_id}: payment {payment.status} has it, the order service says 404"
        )
        return None
    try:
        shipment: Shipment | None = client.shipment(order_id)
    except NotFound:
        shipment = None
    return _Saga(order, payment, shipment)


def _ended(client: SagaClient, order_id: str, saga: _Saga) -> list[str]:
    found = []
    if saga.payment.status is PaymentStatus.PENDING:
        found.append(f"order {order_id}: payment still PENDING")
    if saga.order.status not in SETTLED:
        found.append(
            f"order {order_id}: {saga.order.status}, not ended (waiting for {saga.order.waiting_for})"
        )
    saga_id = f"{saga.payment.owner}:{order_id}"  # how the operator's key names another shop's order
    for service in Service:
        for letter in client.dead_letters(service, order_id=saga_id).items:
            found.append(f"order {order_id}: {letter.event_type} parked in {service.value}: {letter.error}")
    return found


def _money(order_id: str, saga: _Saga) -> list[str]:
    order, payment = saga.order, saga.payment
    amount = payment.amount.amount_minor
    charged = amount if payment.status in CHARGED else 0
    refund = payment.refund
    refunded = refund.amount.amount_minor if refund and refund.status is RefundStatus.SUCCEEDED else 0
    kept = amount if order.status is OrderStatus.COMPLETED else 0
    stuck = amount if payment.status is PaymentStatus.REFUND_FAILED else 0
    found = []
    if order.status in SETTLED and charged - refunded != kept + stuck:
        found.append(
            f"order {order_id} ({order.status}, payment {payment.status}): charged {charged} - refunded"
            f" {refunded} != completed {kept} + refund failed {stuck}"
        )
    if refund is not None and refund.amount != payment.amount:
        found.append(f"order {order_id}: refund {refund.amount} of a payment of {payment.amount}")
    if order.status is OrderStatus.REFUNDED and not (refund and refund.status is RefundStatus.SUCCEEDED):
        found.append(f"order {order_id}: REFUNDED without a successful refund ({refund})")
    refunds_received = order.events("received").count("PaymentRefunded")
    if refunds_received > 1:
        found.append(f"order {order_id}: refunded {refunds_received} times")
    if order.amount != payment.amount:
        found.append(f"order {order_id}: order amount {order.amount} != payment amount {payment.amount}")
    return found


def _total_money(sagas: dict[str, _Saga]) -> list[str]:
    """The books of all the checkouts together, per currency."""
    balance: Counter[str] = Counter()
    for saga in sagas.values():
        if saga.order.status not in SETTLED:
            continue
        payment, amount = saga.payment, saga.payment.amount.amount_minor
        currency = payment.amount.currency
        if payment.status in CHARGED:
            balance[currency] += amount
        if payment.refund and payment.refund.status is RefundStatus.SUCCEEDED:
            balance[currency] -= payment.refund.amount.amount_minor
        if saga.order.status is OrderStatus.COMPLETED or payment.status is PaymentStatus.REFUND_FAILED:
            balance[currency] -= amount
    return [
        f"money ({currency}): captured - refunded - completed - refund failed = {value}, not 0"
        for currency, value in sorted(balance.items())
        if value
    ]


def _pivot(order_id: str, saga: _Saga) -> list[str]:
    order, payment, shipment = saga.order, saga.payment, saga.shipment
    status = shipment.status if shipment else None
    found = []
    if status in LEFT_THE_WAREHOUSE:
        if payment.refund is not None or payment.status is not PaymentStatus.CAPTURED:
            found.append(
                f"order {order_id}: parcel {status} but payment {payment.status}, refund"
                f" {payment.refund.status if payment.refund else None} (shipped and refunded)"
            )
        elif order.status not in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
            found.append(f"order {order_id}: {order.status} but its parcel is {status}")
    confirmed = order.cancellation is not None and order.cancellation.status is Cancellation.CONFIRMED
    if (order.status in CANCELLED or confirmed) and status in HOLDS_STOCK:
        found.append(
            f"order {order_id}: {order.status} (cancel confirmed: {confirmed}) but its parcel is {status}"
        )
    if order.status is OrderStatus.COMPLETED and status is not ShipmentStatus.DELIVERED:
        found.append(f"order {order_id}: COMPLETED but its parcel is {status}")
    return found


def _stock(client: SagaClient, skus: list[str], sagas: dict[str, _Saga], exclusive: bool) -> list[str]:
    reserved: Counter[str] = Counter()
    shipped: Counter[str] = Counter()
    for saga in sagas.values():
        if saga.shipment is None or saga.shipment.status not in HOLDS_STOCK:
            continue
        target = reserved if saga.shipment.status in RESERVED else shipped
        for line in saga.shipment.lines:
            target[line.sku] += line.quantity
    found = []
    for sku in skus:
        row = client.stock(sku)
        if (
            min(row.on_hand, row.reserved, row.shipped) < 0
            or row.on_hand + row.reserved + row.shipped != row.stocked
        ):
            found.append(
                f"stock of {sku}: {row.on_hand} + {row.reserved} + {row.shipped} != stocked {row.stocked}"
            )
        if exclusive and (row.reserved, row.shipped) != (reserved[sku], shipped[sku]):
            found.append(
                f"stock of {sku}: reserved {row.reserved}, shipped {row.shipped}; the shipments hold"
                f" {reserved[sku]} reserved, {shipped[sku]} shipped"
            )
    return found
