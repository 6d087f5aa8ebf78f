"""The plan of every client call, built once for the sync and the async client.

`Calls` turns a method's arguments into a plan (`saga_client.plans`): the request of its operation
(`saga_client.operations`) with the API key of the operation's role (`Authorization: Bearer <key>`;
none for a public operation, or when the configuration has no key for the role), the retry policy, and
how its answer is read. The clients only run plans.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from saga_client import operations as ops
from saga_client.config import ClientConfig, Role, Service
from saga_client.errors import Unavailable
from saga_client.models import (
    SETTLED,
    Address,
    CancelResult,
    CheckoutRequest,
    CheckoutResult,
    DeadLetter,
    DeadLetterPage,
    Discarded,
    Health,
    Line,
    OrderDetail,
    OrderPage,
    OrderStatus,
    Payment,
    Readiness,
    RefundQueued,
    RetryResults,
    Shipment,
    Stock,
    StockList,
    StockRow,
    StockSet,
    WebhookAttemptList,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookResent,
    WebhookSecretRotated,
)
from saga_client.operations import Operation
from saga_client.plans import HttpRequest, Plan, call, wait_for_order

LineLike = Line | tuple[str, int, int] | Mapping[str, Any]
AddressLike = Address | Mapping[str, Any]
WebhookId = UUID | str


@dataclass(frozen=True)
class CheckoutAttempt:
    """A checkout about to be sent: its order id and Idempotency-Key, known before any answer."""

    order_id: str
    idempotency_key: str


CheckoutListener = Callable[[CheckoutAttempt], None]


def new_id() -> str:
    return uuid.uuid4().hex


# The namespace of order ids derived from Idempotency-Keys (any fixed UUID: it only keeps them apart from
# other name-based UUIDs).
_ORDER_IDS_OF_KEYS = uuid.UUID("5b0f3d0e-2f6c-4f7e-9a5e-6c1d0c1a7e42")


def order_id_for(idempotency_key: str) -> str:
    """The order id of a checkout sent with `idempotency_key` and no order id of its own: the same for the
    same key in every process, at any time, so sending the same cart again under the same key (after a
    restart, from another worker) is the same request — a replay — and only another cart under that key
    is a conflict."""
    return uuid.uuid5(_ORDER_IDS_OF_KEYS, idempotency_key).hex


def as_line(line: LineLike) -> Line:
    if isinstance(line, Line):
        return line
    if isinstance(line, tuple):
        sku, quantity, unit_price_minor = line
        return Line(sku=sku, quantity=quantity, unit_price_minor=unit_price_minor)
    return Line.model_validate(line)


class Calls:
    """Plans of the client's calls against the platform of `config`."""

    def __init__(self, config: ClientConfig, on_checkout: CheckoutListener | None = None) -> None:
        self.config = config
        self.on_checkout = on_checkout

    def _plan(
        self,
        operation: Operation[Any],
        *,
        service: Service | None = None,
        params: Mapping[str, str] | None = None,
        body: BaseModel | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **path: str | int,
    ) -> Plan[Any]:
        json = body.model_dump(mode="json", exclude_none=True) if isinstance(body, BaseModel) else body
        all_headers = dict(headers or {})
        key = self.config.key_for(operation.role) if operation.role is not None else None
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        request = HttpRequest(
            operation.method,
            operation.url(self.config, service, **path),
            params=dict(params or {}),
            json=json,
            headers=all_headers,
        )
        return call(
            request,
            operation.answer,
            self.config.retry,
            idempotent=operation.idempotent,
            also_answers=operation.also_answers,
            key_sent="no API key (a public operation)"
            if operation.role is None
            else self.config.key_source(operation.role),
        )

    # -- payment ------------------------------------------------------------------------------------
    def checkout(
        self,
        *,
        customer_id: str,
        lines: Sequence[LineLike],
        currency: str,
        payment_method: str,
        shipping_address: AddressLike,
        order_id: str | None = None,
        amount_minor: int | None = None,
        idempotency_key: str | None = None,
    ) -> Plan[CheckoutResult]:
        """Charge and start the saga. The order id and the Idempotency-Key are chosen here when not
        given, before anything is sent, and every retry sends the same key and body: whatever was lost
        on the way, the customer is charged once, and the order can be looked up by its id. Given a key
        and no order id, the order id is the key's own (`order_id_for`), so the same cart sent again
        under the same key — from any process, at any time — is answered as the first."""
        if order_id is None:
            order_id = new_id() if idempotency_key is None else order_id_for(idempotency_key)
        request = CheckoutRequest(
            order_id=order_id,
            customer_id=customer_id,
            lines=tuple(as_line(line) for line in lines),
            currency=currency,
            payment_method=payment_method,
            shipping_address=shipping_address
            if isinstance(shipping_address, Address)
            else Address.model_validate(shipping_address),
            amount_minor=amount_minor,
        )
        attempt = CheckoutAttempt(str(request.order_id), idempotency_key or new_id())
        if self.on_checkout is not None:
            self.on_checkout(attempt)
        return self._checkout(request, attempt)

    def _checkout(self, request: CheckoutRequest, attempt: CheckoutAttempt) -> Plan[CheckoutResult]:
        try:
            answer: CheckoutResult = yield from self._plan(
                ops.CHECKOUT, body=request, headers={"Idempotency-Key": attempt.idempotency_key}
            )
        except Unavailable as unavailable:
            raise Unavailable(
                f"{unavailable} (send the same checkout again with idempotency_key="
                f"{attempt.idempotency_key!r}: it is charged at most once)",
                last_cause=unavailable.last_cause,
                attempts=unavailable.attempts,
                order_id=attempt.order_id,
                idempotency_key=attempt.idempotency_key,
            ) from unavailable.last_cause
        return answer

    def payment(self, order_id: str) -> Plan[Payment]:
        return self._plan(ops.PAYMENT, order_id=order_id)

    def retry_refund(self, order_id: str) -> Plan[RefundQueued]:
        """The operator's key names a shop's order as `shop:order_id`; given the shop's own order id,
        whose it is is read first, with the shop's key."""
        if ":" not in order_id and self.config.key_for(Role.SHOP) is not None:
            payment = yield from self.payment(order_id)
            order_id = f"{payment.owner}:{order_id}"
        queued: RefundQueued = yield from self._plan(ops.RETRY_REFUND, order_id=order_id)
        return queued

    # -- order --------------------------------------------------------------------------------------
    def order(self, order_id: str) -> Plan[OrderDetail]:
        return self._plan(ops.ORDER, order_id=order_id)

    def orders(
        self,
        *,
        status: OrderStatus | str | None = None,
        stuck_for: float | timedelta | None = None,
        limit: int = 50,
        offset: int = 0,
        after: str | None = None,
    ) -> Plan[OrderPage]:
        params = {"limit": str(limit), "offset": str(offset)}
        if after is not None:
            params["after"] = after
        if status is not None:
            params["status"] = str(status)
        if stuck_for is not None:
            seconds = stuck_for.total_seconds() if isinstance(stuck_for, timedelta) else stuck_for
            params["stuck_for"] = str(int(seconds))
        return self._plan(ops.ORDERS, params=params)

    def cancel(self, order_id: str) -> Plan[CancelResult]:
        return self._plan(ops.CANCEL, order_id=order_id)

    def wait_for(
        self, order_id: str, status: str | Iterable[str] | None = None, *, timeout: float = 30.0
    ) -> Plan[OrderDetail]:
        wanted: Collection[str]
        if status is None:
            wanted = SETTLED
        elif isinstance(status, str):
            wanted = {status}
        else:
            wanted = set(status)
        return wait_for_order(lambda: self.order(order_id), order_id, wanted, timeout)

    # -- delivery -----------------------------------------------------------------------------------
    def set_stock(self, sku: str, on_hand: int) -> Plan[Stock]:
        return self._plan(ops.SET_STOCK, body={"on_hand": on_hand}, sku=sku)

    def stock(self, sku: str) -> Plan[StockRow]:
        return self._plan(ops.STOCK, sku=sku)

    def inventory(self, *, after: str | None = None, limit: int | None = None) -> Plan[StockList]:
        params = {"after": after, "limit": None if limit is None else str(limit)}
        return self._plan(ops.INVENTORY, params={k: v for k, v in params.items() if v is not None})

    def load_stock(self, counts: Mapping[str, int]) -> Plan[StockSet]:
        items = [{"sku": sku, "on_hand": on_hand} for sku, on_hand in counts.items()]
        return self._plan(ops.LOAD_STOCK, body={"items": items})

    def shipment(self, order_id: str) -> Plan[Shipment]:
        return self._plan(ops.SHIPMENT, order_id=order_id)

    def carrier_step(self, order_id: str, step: str) -> Plan[Shipment]:
        """The carrier's `step`, by its name in `models.CARRIER_STEPS` (KeyError for one it lacks)."""
        return self._plan(ops.CARRIER_STEP[step], order_id=order_id)

    def ship(self, order_id: str) -> Plan[Shipment]:
        return self.carrier_step(order_id, "ship")

    def deliver(self, order_id: str) -> Plan[Shipment]:
        return self.carrier_step(order_id, "deliver")

    # -- webhooks (order service) -------------------------------------------------------------------
    def create_webhook(
        self,
        url: str,
        *,
        event_types: Iterable[str] | str | None = None,
        description: str | None = None,
        owner: str | None = None,
    ) -> Plan[WebhookEndpointCreated]:
        """Every type when `event_types` is None. With `owner` (another shop's name) the call is the
        operator's, and sends the operator's key."""
        body: dict[str, Any] = {"url": url}
        if event_types is not None:
            body["event_types"] = [event_types] if isinstance(event_types, str) else list(event_types)
        if description is not None:
            body["description"] = description
        if owner is not None:
            body["owner"] = owner
        operation = ops.CREATE_WEBHOOK if owner is None else ops.CREATE_WEBHOOK_FOR_SHOP
        return self._plan(operation, body=body)

    def webhooks(self, *, owner: str | None = None) -> Plan[list[WebhookEndpoint]]:
        """With `owner` the call is the operator's (that shop's endpoints), and sends the operator's key."""
        if owner is None:
            listed: WebhookEndpointList = yield from self._plan(ops.WEBHOOKS)
        else:
            listed = yield from self._plan(ops.WEBHOOKS_OF_SHOP, params={"owner": owner})
        return listed.items

    def webhook(self, webhook_id: WebhookId) -> Plan[WebhookEndpoint]:
        return self._plan(ops.WEBHOOK, webhook_id=str(webhook_id))

    def disable_webhook(self, webhook_id: WebhookId) -> Plan[WebhookEndpoint]:
        return self._plan(ops.DISABLE_WEBHOOK, webhook_id=str(webhook_id))

    def enable_webhook(self, webhook_id: WebhookId) -> Plan[WebhookEndpoint]:
        return self._plan(ops.ENABLE_WEBHOOK, webhook_id=str(webhook_id))

    def rotate_webhook_secret(
        self, webhook_id: WebhookId, *, overlap_seconds: int = 86400
    ) -> Plan[WebhookSecretRotated]:
        return self._plan(
            ops.ROTATE_WEBHOOK_SECRET, body={"overlap_seconds": overlap_seconds}, webhook_id=str(webhook_id)
        )

    def webhook_attempts(
        self, webhook_id: WebhookId, *, limit: int | None = None, before: int | None = None
    ) -> Plan[WebhookAttemptList]:
        params = {
            "limit": None if limit is None else str(limit),
            "before": None if before is None else str(before),
        }
        return self._plan(
            ops.WEBHOOK_ATTEMPTS,
            params={name: value for name, value in params.items() if value is not None},
            webhook_id=str(webhook_id),
        )

    def resend_webhook(
        self,
        webhook_id: WebhookId,
        *,
        event_id: UUID | str | None = None,
        since: datetime | str | None = None,
    ) -> Plan[WebhookResent]:
        """One event again (`event_id`), or every event since a time (`since`): exactly one of them. A
        datetime must say its time zone (a naive one would be read in the server's)."""
        if (event_id is None) == (since is None):
            raise ValueError("resend_webhook: give event_id (one event) or since (every event since then)")
        body: dict[str, str]
        if event_id is not None:
            body = {"event_id": str(event_id)}
        elif isinstance(since, datetime):
            if since.utcoffset() is None:
                raise ValueError("resend_webhook: since must be timezone-aware (e.g. datetime.now(UTC))")
            body = {"since": since.isoformat()}
        else:
            body = {"since": str(since)}
        return self._plan(ops.RESEND_WEBHOOK, body=body, webhook_id=str(webhook_id))

    def delete_webhook(self, webhook_id: WebhookId) -> Plan[None]:
        yield from self._plan(ops.DELETE_WEBHOOK, webhook_id=str(webhook_id))

    # -- every service ------------------------------------------------------------------------------
    def dead_letters(
        self,
        service: Service | str,
        *,
        status: str | None = None,
        order_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Plan[DeadLetterPage]:
        params = {"limit": str(limit), "offset": str(offset)}
        if status is not None:
            params["status"] = status
        if order_id is not None:
            params["order_id"] = order_id
        return self._plan(ops.DEAD_LETTERS, service=Service(service), params=params)

    def dead_letter(self, service: Service | str, dead_letter_id: int) -> Plan[DeadLetter]:
        return self._plan(ops.DEAD_LETTER, service=Service(service), dead_letter_id=dead_letter_id)

    def retry_dead_letter(self, service: Service | str, dead_letter_id: int) -> Plan[RetryResults]:
        return self._plan(ops.RETRY_DEAD_LETTER, service=Service(service), dead_letter_id=dead_letter_id)

    def discard_dead_letter(self, service: Service | str, dead_letter_id: int) -> Plan[Discarded]:
        return self._plan(ops.DISCARD_DEAD_LETTER, service=Service(service), dead_letter_id=dead_letter_id)

    def health(self, service: Service | str) -> Plan[Health]:
        return self._plan(ops.HEALTH, service=Service(service))

    def readiness(self, service: Service | str) -> Plan[Readiness]:
        return self._plan(ops.READINESS, service=Service(service))
