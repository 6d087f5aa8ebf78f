"""The customer's cancel: a request to delivery through the saga, honoured even before the order is known.

- An order the service knows goes through the saga: from a status `declared_standing` lets the customer
  cancel in (PLACED, SCHEDULED, …) → CANCELLING, and delivery is asked (OrderCancellationRequested).
  Delivery alone decides; the refund follows its confirmation. A cancel of an order known to have
  shipped is refused at once.
- An order the service has not recorded yet (payment answered `202` moments ago) is checked with payment;
  if payment accepted it, the cancel is kept until the order exists and applied as it is created
  (`order/early_cancels.py`). A checkout that charged nothing has nothing to cancel.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common import pg
from common.errors import Conflict, NotFound
from common.messaging.unit_of_work import UnitOfWork
from common.tenancy import order_id_of
from order import early_cancels, models
from order.answers import ACCEPTED, CancelAnswer
from order.handlers import advance
from order.payment_lookup import PaymentLookup
from order.saga import Cancellation, OrderStatus, Outcome, SagaInput
from order.saga_batch import Advanced

CANCEL_DETAIL = "the customer asked to cancel"


class NotCancellable(Conflict):
    code = "not_cancellable"


async def cancel_order(
    unit_of_work: Callable[[], UnitOfWork], payments: PaymentLookup, order_id: str, *, by: str
) -> CancelAnswer:
    """Ask to cancel `order_id` (a saga id) on behalf of the caller named `by` (the order's timeline
    says who asked). Raises NotFound (no such checkout), NotCancellable (shipped, or the
    payment failed), Unavailable (payment cannot be asked about an order not recorded yet)."""
    async with unit_of_work() as work:
        advanced = await _cancel_if_recorded(work.conn, order_id, by)
        if advanced is not None:
            _emit(work, advanced)
    if advanced is not None:
        return _answer(order_id, advanced)
    checkout = await payments.accepted_checkout(order_id)
    if checkout is None:
        raise NotFound(f"order {order_id_of(order_id)} not found")
    if checkout.charge_failed:
        raise NotCancellable(
            f"the payment failed ({checkout.payment_status}); there is nothing to cancel",
            order_status=OrderStatus.REJECTED.value,
        )
    async with unit_of_work() as work:
        await early_cancels.lock_creation(work.conn, [order_id])
        advanced = await _cancel_if_recorded(work.conn, order_id, by)  # created while payment was asked?
        if advanced is None:
            kept = await early_cancels.record(work.conn, order_id)
        else:
            _emit(work, advanced)
    if advanced is not None:
        return _answer(order_id, advanced)
    outcome = Outcome.APPLIED if kept else Outcome.IGNORED  # ignored: that cancel is already kept
    return CancelAnswer.of(order_id, ACCEPTED, Cancellation.REQUESTED, outcome)


async def _cancel_if_recorded(conn: AsyncConnection, order_id: str, by: str) -> Advanced | None:
    """The saga's answer to the cancel if the order is recorded (its timeline keeps the request, also a
    refused one); None if it is not."""
    recorded = await pg.fetch_all(
        conn, f"SELECT 1 FROM {models.orders.name} WHERE order_id = %s FOR UPDATE", (order_id,)
    )
    if not recorded:
        return None
    return await advance(conn, order_id, SagaInput.CANCEL_REQUESTED, detail=f"{CANCEL_DETAIL} (by {by})")


def _emit(work: UnitOfWork, advanced: Advanced) -> None:
    """The cancel's events, in the saga's trace (the request's own is its parent when it has none)."""
    trace = advanced.order.trace_context if advanced.order is not None else None
    work.emit(advanced.emitted, [trace] * len(advanced.emitted) if trace else ())


def _answer(order_id: str, advanced: Advanced) -> CancelAnswer:
    decision, order = advanced.decision, advanced.order
    assert order is not None, "only a recorded order is advanced"
    if decision.outcome is Outcome.REJECTED:
        raise NotCancellable(decision.reason, order_status=order.status.value)
    return CancelAnswer.of(order_id, order.status, order.cancellation, decision.outcome)
