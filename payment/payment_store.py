"""Payment's records of checkouts, in PostgreSQL: the SQL behind the checkout use case's store port.

Each write is one statement in autocommit (one round trip, no BEGIN or COMMIT): recording an attempt
(the key, and the payment only if the key is new), and settling it (the payment out of PENDING and, if
it moved, its event and the stored answer, through a one-statement unit of work that wakes the relay).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from common import pg
from common.db import autocommit, reading
from common.events import Envelope
from common.messaging.unit_of_work import UnitOfWork
from common.tenancy import order_id_of
from payment import models
from payment.checkout import (
    Attempt,
    CheckoutAnswer,
    CheckoutRequest,
    IdempotencyConflict,
    InterruptedCheckout,
    OrderIdTaken,
)
from payment.domain import KeyUse, PaymentStatus, idempotency_key_use

# The key, and the payment only if the key is new, in one statement, run on its own (autocommit: one
# round trip, where BEGIN and COMMIT around it were two more on every checkout). It answers whether the
# key was new. An order id that already has a payment fails the whole statement on the payments' unique
# order id (`_ORDER_ID_TAKEN`), so the new key is not kept either.
_RECORD_ATTEMPT = (
    f"WITH new_key AS (INSERT INTO {models.checkout_requests.name} (idempotency_key, request_fingerprint,"
    " order_id) VALUES (%(key)s, %(fingerprint)s, %(order_id)s) ON CONFLICT DO NOTHING"
    " RETURNING idempotency_key),"
    f" new_payment AS (INSERT INTO {models.payments.name} (payment_id, order_id, customer_id, amount_minor,"
    " currency, payment_method, status, lines, shipping_address)"
    " SELECT %(payment_id)s, %(order_id)s, %(customer_id)s, %(amount_minor)s, %(currency)s,"
    " %(payment_method)s, %(status)s, %(lines)s::json, %(shipping_address)s::json"
    " WHERE EXISTS (SELECT FROM new_key) RETURNING payment_id)"
    " SELECT EXISTS (SELECT FROM new_key)"
)
_ORDER_ID_TAKEN = "uq_payments_order_id"

# The payment out of PENDING and, only if it moved, its event and the answer kept for replays, in one
# statement: of two concurrent replays, one moves it (the other waits for its row lock, then finds it
# moved) and only that one writes. `{outbox}` is the event's outbox write, conditional on `moved`.
_SETTLE = (
    f"WITH moved AS (UPDATE {models.payments.name} SET status = %s, gateway_reference = %s,"
    " failure_reason = %s, updated_at = now()"
    f" WHERE payment_id = %s AND status = '{PaymentStatus.PENDING.value}' RETURNING payment_id),"
    " event AS ({outbox}),"
    f" answer AS (UPDATE {models.checkout_requests.name} SET response_status = %s,"
    " response_body = %s::json WHERE idempotency_key = %s AND EXISTS (SELECT FROM moved))"
    " SELECT EXISTS (SELECT FROM moved)"
)


class SqlPaymentStore:
    def __init__(self, engine: AsyncEngine, unit_of_work: Callable[[], UnitOfWork]) -> None:
        self._engine = engine
        self._unit_of_work = unit_of_work

    async def record_attempt(
        self, key: str, fingerprint: str, order_id: str, request: CheckoutRequest
    ) -> Attempt:
        keys, payments = models.checkout_requests, models.payments
        payment_id = uuid.uuid4()
        async with autocommit(self._engine) as conn:
            try:
                [(key_is_new,)] = await pg.fetch_all(
                    conn,
                    _RECORD_ATTEMPT,
                    {
                        "key": key,
                        "fingerprint": fingerprint,
                        "order_id": order_id,
                        "payment_id": payment_id,
                        "customer_id": request.customer_id,
                        "amount_minor": request.total_minor,
                        "currency": request.currency,
                        "payment_method": request.payment_method,
                        "status": PaymentStatus.PENDING.value,
                        "lines": json.dumps([line.model_dump(mode="json") for line in request.lines]),
                        "shipping_address": request.shipping_address.model_dump_json(),
                    },
                )
            except IntegrityError as error:
                if getattr(getattr(error.orig, "diag", None), "constraint_name", None) != _ORDER_ID_TAKEN:
                    raise
                raise OrderIdTaken(
                    f"order {order_id_of(order_id)} already has a payment (under another Idempotency-Key)"
                ) from None
            if not key_is_new:
                # A replay: its reads, each a statement of its own (the key's row is committed).
                stored = (await conn.execute(select(keys).where(keys.c.idempotency_key == key))).one()
                if idempotency_key_use(stored.request_fingerprint, fingerprint) is KeyUse.CONFLICT:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was already used with a different request body"
                    )
                payment_id = await conn.scalar(
                    select(payments.c.payment_id).where(payments.c.order_id == stored.order_id)
                )
                answered = (
                    CheckoutAnswer(stored.response_status, stored.response_body)
                    if stored.response_body is not None
                    else None
                )
                return Attempt(payment_id, stored.order_id, answered)
        return Attempt(payment_id, order_id)

    async def settle(
        self,
        key: str,
        attempt: Attempt,
        status: PaymentStatus,
        gateway_reference: str | None,
        reason: str | None,
        event: Envelope,
        answer: CheckoutAnswer,
    ) -> CheckoutAnswer:
        keys = models.checkout_requests
        # The checkout is the hot path: one statement in autocommit, where BEGIN, the move, the writes
        # and COMMIT were four round trips.
        async with self._unit_of_work() as work:
            outbox = work.emit_as_statement([event], only_if="moved")
            [(moved,)] = await pg.fetch_all(
                work.conn,
                _SETTLE.format(outbox=outbox.sql),
                (
                    status.value,
                    gateway_reference,
                    reason,
                    attempt.payment_id,
                    *outbox.params,
                    answer.status,
                    json.dumps(answer.body),
                    key,
                ),
            )
            if not moved:
                # A concurrent replay of the same request finished first and answered already.
                stored = (await work.conn.execute(select(keys).where(keys.c.idempotency_key == key))).one()
                return CheckoutAnswer(stored.response_status or 202, stored.response_body or answer.body)
        return answer

    async def interrupted(self, older_than: timedelta, limit: int) -> list[InterruptedCheckout]:
        payments, keys = models.payments, models.checkout_requests
        async with reading(self._engine) as conn:
            rows = (
                await conn.execute(
                    select(payments, keys.c.idempotency_key)
                    .join(keys, keys.c.order_id == payments.c.order_id)
                    .where(
                        payments.c.status == PaymentStatus.PENDING,
                        payments.c.created_at < func.now() - older_than,
                    )
                    .order_by(payments.c.created_at)
                    .limit(limit)
                )
            ).all()
        return [
            InterruptedCheckout(
                key=row.idempotency_key,
                attempt=Attempt(row.payment_id, row.order_id),
                request=CheckoutRequest(
                    order_id=order_id_of(row.order_id),
                    customer_id=row.customer_id,
                    lines=row.lines,
                    currency=row.currency,
                    payment_method=row.payment_method,
                    shipping_address=row.shipping_address,
                ),
            )
            for row in rows
        ]
