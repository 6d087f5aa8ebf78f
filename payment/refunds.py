"""The refund worker: calls the gateway for queued refunds, retries with backoff, never stops silently.

A refund is claimed by pushing its `next_attempt_at` past a lease (with SKIP LOCKED, so two workers
never claim the same one), the gateway is called outside any transaction with the refund id as its
idempotency key, and the result is recorded with the event in one transaction. If the worker dies
mid-call, the lease expires and the call is repeated; the gateway's idempotency makes that safe.

The refunds are kept by a `RefundStore` (PostgreSQL in `payment/refund_store.py`; an in-memory fake in
the unit tests). Each attempt reads load → decide → save: the store hands out the claimed refund, the
worker calls the gateway and decides the outcome (`payment.domain.after_refund_failure`), the store saves
it with its event. The rules:
- A refund the gateway made is SUCCEEDED and its payment REFUNDED, with a PaymentRefunded.
- A refused or timed-out refund is retried with backoff until `max_attempts` attempts; then it is FAILED
  and its payment REFUND_FAILED, with a PaymentRefundFailed (an operator may queue it again:
  `retry_refund`).
- An outcome is recorded only while the refund is PENDING: of two workers that made the same refund
  (a lease that expired mid-call), only the first records it and emits its event.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from common.config import Service
from common.errors import Conflict
from common.events import Envelope, new_envelope
from common.events.payment import PaymentRefunded, PaymentRefundFailed
from common.events.values import Money
from common.tenancy import order_id_of
from common.tracing import Tracing
from payment.domain import GiveUpRefund, after_refund_failure
from payment.gateway import GatewayRefused, GatewayTimeout, PaymentGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedRefund:
    """A PENDING refund this worker holds for one attempt (until its lease expires)."""

    refund_id: uuid.UUID
    payment_id: uuid.UUID
    order_id: str
    amount_minor: int
    currency: str
    attempts: int  # this attempt included
    trace_context: str | None  # the trace of the cancel that queued it, which the attempt continues


class RefundStore(Protocol):
    """Where refunds are kept (`payment/refund_store.py` in PostgreSQL; a fake in the unit tests)."""

    async def claim_due(self, limit: int, lease: timedelta) -> list[ClaimedRefund]:
        """Claim up to `limit` PENDING refunds that are due, oldest due first, skipping any another worker
        is claiming: each one's attempt is counted and its next attempt pushed `lease` away."""

    async def charge_reference(self, payment_id: uuid.UUID) -> str | None:
        """The gateway's reference of the charge the refund gives back."""

    async def record_refunded(self, refund: ClaimedRefund, event: Envelope) -> bool:
        """The refund SUCCEEDED and its payment REFUNDED, with `event`, only if the refund is still
        PENDING; False (nothing written, nothing emitted) if another worker recorded it first."""

    async def record_given_up(self, refund: ClaimedRefund, error: str, event: Envelope) -> bool:
        """The refund FAILED with `error` and its payment REFUND_FAILED, with `event`, only if the refund
        is still PENDING; False (nothing written, nothing emitted) if another worker recorded it first."""

    async def schedule_retry(self, refund: ClaimedRefund, error: str, delay: timedelta) -> None:
        """Keep `error` and make the refund due again `delay` from now."""

    async def requeue_failed(self, order_id: str, by: str) -> uuid.UUID | None:
        """The order's FAILED refund PENDING again, due now, with a fresh attempt budget and `by` recorded;
        its id, or None if the order has no FAILED refund."""


class RefundWorker:
    def __init__(
        self,
        *,
        store: RefundStore,
        gateway: PaymentGateway,
        max_attempts: int,
        lease: timedelta,
        tracing: Tracing | None = None,
    ) -> None:
        self._store = store
        self._tracing = tracing or Tracing.off()
        self._lease = lease
        self._gateway = gateway
        self._max_attempts = max_attempts
        # Runs a round soon (the service's `on_wake`): a retry this worker schedules is started when it
        # comes due, so the worker's timer only has to catch what other workers and expired leases leave.
        self.wake: Callable[[], None] = lambda: None

    async def run_due(self, limit: int = 20) -> int:
        """Attempt every refund that is due; returns how many were attempted."""
        claimed = await self._store.claim_due(limit, self._lease)
        await asyncio.gather(*(self._attempt(refund) for refund in claimed))
        return len(claimed)

    async def _attempt(self, refund: ClaimedRefund) -> None:
        """One call to the gateway and its outcome, in the trace of the cancel that queued the refund."""
        with self._tracing.span(
            "refund",
            parent=refund.trace_context,
            attributes={"saga.order_id": refund.order_id, "saga.refund_attempt": refund.attempts},
        ):
            await self._attempt_traced(refund)

    async def _attempt_traced(self, refund: ClaimedRefund) -> None:
        reference = await self._store.charge_reference(refund.payment_id)
        try:
            await self._gateway.refund(
                idempotency_key=str(refund.refund_id),
                charge_reference=reference or "",
                amount_minor=refund.amount_minor,
                currency=refund.currency,
            )
        except (GatewayRefused, GatewayTimeout) as error:
            await self._record_failure(refund, f"{type(error).__name__}: {error}")
            return
        payload = PaymentRefunded(
            payment_id=refund.payment_id, refund_id=refund.refund_id, amount=_money(refund)
        )
        await self._store.record_refunded(refund, _envelope(refund, payload))

    async def _record_failure(self, refund: ClaimedRefund, error: str) -> None:
        decision = after_refund_failure(refund.attempts, self._max_attempts)
        if isinstance(decision, GiveUpRefund):
            payload = PaymentRefundFailed(
                payment_id=refund.payment_id,
                refund_id=refund.refund_id,
                amount=_money(refund),
                reason=error,
                attempts=refund.attempts,
            )
            if await self._store.record_given_up(refund, error, _envelope(refund, payload)):
                log.error(
                    "refund %s for order %s failed for good: %s", refund.refund_id, refund.order_id, error
                )
            return
        await self._store.schedule_retry(refund, error, timedelta(seconds=decision.delay_seconds))
        asyncio.get_running_loop().call_later(decision.delay_seconds, self.wake)


class NoFailedRefund(Conflict):
    code = "no_failed_refund"


async def retry_refund(store: RefundStore, order_id: str, *, by: str) -> uuid.UUID:
    """Operator action, by the caller named `by` (the refund records who): put the order's FAILED refund
    back in the queue with a fresh attempt budget; returns its id. Raises NoFailedRefund if the order has
    no refund in state FAILED (or no payment)."""
    refund_id = await store.requeue_failed(order_id, by)
    if refund_id is None:
        raise NoFailedRefund(f"order {order_id_of(order_id)} has no refund in state FAILED")
    return refund_id


def _money(refund: ClaimedRefund) -> Money:
    return Money(amount_minor=refund.amount_minor, currency=refund.currency)


def _envelope(refund: ClaimedRefund, payload: PaymentRefunded | PaymentRefundFailed) -> Envelope:
    return new_envelope(payload, order_id=refund.order_id, producer=Service.PAYMENT.value)
