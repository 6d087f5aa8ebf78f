"""`SagaClient` (sync) and `AsyncSagaClient`: the platform's HTTP API as typed calls.

Both run the same plans (`saga_client.calls`, `saga_client.plans`) with an executor of their kind:
httpx's Client and `time.sleep`, or httpx's AsyncClient and `asyncio.sleep`. A method here is the
plan's name and nothing else; the rules (retries, errors, waiting) are stated where the plans are.

    with SagaClient() as saga:                      # URLs from SAGA_*_URL, else `saga run`'s defaults;
                                                    # keys from SAGA_API_KEY (SAGA_CARRIER_/OPERATOR_…)
        accepted = saga.checkout(customer_id="c-1", currency="EUR", payment_method="tok_visa",
                                 lines=[("BOOK-1", 1, 1999)], shipping_address=address)
        order = saga.wait_for(accepted.order_id)    # terminal (or REFUND_FAILED), with backoff
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

import httpx

from saga_client.calls import AddressLike, Calls, CheckoutListener, LineLike, WebhookId
from saga_client.config import ClientConfig, RetryPolicy, Service
from saga_client.models import (
    CancelResult,
    CheckoutResult,
    DeadLetter,
    DeadLetterPage,
    Discarded,
    Health,
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
    WebhookResent,
    WebhookSecretRotated,
)
from saga_client.plans import HttpRequest, Plan, Reply, Sent, Sleep

T = TypeVar("T")


def _reply(response: httpx.Response) -> Reply:
    return Reply(response.status_code, response.headers, response.content)


def run_sync(plan: Plan[T], http: httpx.Client) -> T:
    """Run a plan with blocking I/O."""
    sent: Sent = None
    while True:
        try:
            step = plan.send(sent)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            sent = None
            continue
        try:
            sent = _reply(_send_sync(http, step))
        except httpx.TransportError as failure:
            sent = failure


async def run_async(plan: Plan[T], http: httpx.AsyncClient) -> T:
    """Run a plan with asyncio."""
    sent: Sent = None
    while True:
        try:
            step = plan.send(sent)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            sent = None
            continue
        try:
            sent = _reply(await _send_async(http, step))
        except httpx.TransportError as failure:
            sent = failure


def _send_sync(http: httpx.Client, request: HttpRequest) -> httpx.Response:
    return http.request(
        request.method, request.url, params=request.params, json=request.json, headers=request.headers
    )


async def _send_async(http: httpx.AsyncClient, request: HttpRequest) -> httpx.Response:
    return await http.request(
        request.method, request.url, params=request.params, json=request.json, headers=request.headers
    )


class _Base:
    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        payment_url: str | None = None,
        order_url: str | None = None,
        delivery_url: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        carrier_api_key: str | None = None,
        operator_api_key: str | None = None,
        on_checkout: CheckoutListener | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """What is not given comes from the environment (`saga_client.config`): `api_key` is the shop's
        key and the one sent by a role without its own (`carrier_api_key`, `operator_api_key`).
        `transport` replaces httpx's network transport (e.g. `httpx.MockTransport` in tests)."""
        self._transport = transport
        options: dict[str, Any] = {
            "payment_url": payment_url,
            "order_url": order_url,
            "delivery_url": delivery_url,
            "timeout": timeout,
            "retry": retry,
            "api_key": api_key,
            "carrier_api_key": carrier_api_key,
            "operator_api_key": operator_api_key,
        }
        config = ClientConfig.from_env(**options) if config is None else config.with_options(**options)
        self.config = config
        self._calls = Calls(config, on_checkout)
        self._open()

    def _open(self) -> None:
        """Create the HTTP connection pool of the client's kind."""
        raise NotImplementedError


class SagaClient(_Base):
    """The platform's API, blocking. Configured by a `ClientConfig`, or URLs, API keys, timeout and retry
    policy (what is not given comes from the environment: `saga_client.config`). Close it, or use
    `with`. A key the platform refuses raises `Unauthenticated` (401) or `Forbidden` (403)."""

    _http: httpx.Client

    def _open(self) -> None:
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError("SagaClient needs a sync transport (httpx.BaseTransport)")
        self._http = httpx.Client(timeout=self.config.timeout, transport=transport)

    def with_options(self, *, timeout: float | None = None, retry: RetryPolicy | None = None) -> SagaClient:
        """A new client like this one with another timeout or retry policy (close it too)."""
        return SagaClient(
            self.config,
            timeout=timeout,
            retry=retry,
            on_checkout=self._calls.on_checkout,
            transport=self._transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SagaClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, plan: Plan[T]) -> T:
        return run_sync(plan, self._http)

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
    ) -> CheckoutResult:
        """Charge and start the saga (`202`). `lines` are `Line`s or `(sku, quantity, unit_price_minor)`.
        The order id and Idempotency-Key are generated when not given; transport errors, timeouts, 429
        and 503 are retried with the same key and body. `Unavailable` (with `order_id` and
        `idempotency_key`) when the budget is spent: send it again with that key."""
        return self._run(
            self._calls.checkout(
                customer_id=customer_id,
                lines=lines,
                currency=currency,
                payment_method=payment_method,
                shipping_address=shipping_address,
                order_id=order_id,
                amount_minor=amount_minor,
                idempotency_key=idempotency_key,
            )
        )

    def payment(self, order_id: str) -> Payment:
        """The payment of an order and its refund (`NotFound` if payment never accepted it)."""
        return self._run(self._calls.payment(order_id))

    def retry_refund(self, order_id: str) -> RefundQueued:
        """Operator: try a refund in state FAILED again (`NoFailedRefund` if there is none)."""
        return self._run(self._calls.retry_refund(order_id))

    def order(self, order_id: str) -> OrderDetail:
        """Status and timeline; ACCEPTED while the order service has not recorded it yet."""
        return self._run(self._calls.order(order_id))

    def orders(
        self,
        *,
        status: OrderStatus | str | None = None,
        stuck_for: float | timedelta | None = None,
        limit: int = 50,
        offset: int = 0,
        after: str | None = None,
    ) -> OrderPage:
        """A page of your orders, newest first; with `stuck_for` the non-terminal ones idle that long;
        `after=page.next_after` is the next page."""
        return self._run(
            self._calls.orders(status=status, stuck_for=stuck_for, limit=limit, offset=offset, after=after)
        )

    def cancel(self, order_id: str) -> CancelResult:
        """Ask to cancel: `202` CANCELLING (delivery decides) or ACCEPTED; `NotCancellable` once the
        order is known shipped or its payment failed. The order then ends REFUNDED (confirmed) or
        COMPLETED (refused: the parcel had shipped)."""
        return self._run(self._calls.cancel(order_id))

    def wait_for(
        self, order_id: str, status: str | Iterable[str] | None = None, *, timeout: float = 30.0
    ) -> OrderDetail:
        """The order once its status is `status` (one or several), or settled when none is named
        (COMPLETED, REJECTED, REFUNDED or REFUND_FAILED). Polls with backoff (50 ms doubling to 1 s);
        `UnexpectedOutcome` if the saga ended elsewhere, `WaitTimeout` after `timeout` seconds."""
        return self._run(self._calls.wait_for(order_id, status, timeout=timeout))

    def set_stock(self, sku: str, on_hand: int) -> Stock:
        """Set the units on hand of a SKU (created if new)."""
        return self._run(self._calls.set_stock(sku, on_hand))

    def stock(self, sku: str) -> StockRow:
        return self._run(self._calls.stock(sku))

    def inventory(self, *, after: str | None = None, limit: int | None = None) -> StockList:
        """A page of SKUs by SKU (up to 1,000); `after=page.next_after` is the next page."""
        return self._run(self._calls.inventory(after=after, limit=limit))

    def load_stock(self, counts: Mapping[str, int]) -> StockSet:
        """Set several SKUs at once."""
        return self._run(self._calls.load_stock(counts))

    def shipment(self, order_id: str) -> Shipment:
        return self._run(self._calls.shipment(order_id))

    def carrier_step(self, order_id: str, step: str) -> Shipment:
        """Carrier: `step` (a name in `models.CARRIER_STEPS`) was made (`WrongState` unless the parcel is
        where the step before it left it)."""
        return self._run(self._calls.carrier_step(order_id, step))

    def ship(self, order_id: str) -> Shipment:
        """Carrier: the parcel was picked up (`WrongState` unless SCHEDULED)."""
        return self._run(self._calls.ship(order_id))

    def deliver(self, order_id: str) -> Shipment:
        """Carrier: delivered (`WrongState` unless SHIPPED)."""
        return self._run(self._calls.deliver(order_id))

    def dead_letters(
        self,
        service: Service | str,
        *,
        status: str | None = None,
        order_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> DeadLetterPage:
        """A service's parked events (by default those still parked), optionally of one order."""
        return self._run(
            self._calls.dead_letters(service, status=status, order_id=order_id, limit=limit, offset=offset)
        )

    def dead_letter(self, service: Service | str, dead_letter_id: int) -> DeadLetter:
        return self._run(self._calls.dead_letter(service, dead_letter_id))

    def retry_dead_letter(self, service: Service | str, dead_letter_id: int) -> RetryResults:
        """Process a parked event again, and those of its order parked behind it."""
        return self._run(self._calls.retry_dead_letter(service, dead_letter_id))

    def discard_dead_letter(self, service: Service | str, dead_letter_id: int) -> Discarded:
        return self._run(self._calls.discard_dead_letter(service, dead_letter_id))

    def create_webhook(
        self,
        url: str,
        *,
        event_types: Iterable[str] | str | None = None,
        description: str | None = None,
        owner: str | None = None,
    ) -> WebhookEndpointCreated:
        """Order service: POST the shop's order events to `url` (every type unless `event_types` names
        some). The answer carries the signing `secret`, shown this once: keep it. An operator names the
        shop (`owner=`), and the call then sends the operator's key."""
        return self._run(
            self._calls.create_webhook(url, event_types=event_types, description=description, owner=owner)
        )

    def webhooks(self, *, owner: str | None = None) -> list[WebhookEndpoint]:
        """The shop's endpoints (an operator: `owner=` a shop's, with the operator's key)."""
        return self._run(self._calls.webhooks(owner=owner))

    def webhook(self, webhook_id: WebhookId) -> WebhookEndpoint:
        """One endpoint: whether it is enabled (and why not), what is pending, the last success and
        failure."""
        return self._run(self._calls.webhook(webhook_id))

    def disable_webhook(self, webhook_id: WebhookId) -> WebhookEndpoint:
        """Stop sending; what is pending is kept, and sent in order once enabled."""
        return self._run(self._calls.disable_webhook(webhook_id))

    def enable_webhook(self, webhook_id: WebhookId) -> WebhookEndpoint:
        return self._run(self._calls.enable_webhook(webhook_id))

    def rotate_webhook_secret(
        self, webhook_id: WebhookId, *, overlap_seconds: int = 86400
    ) -> WebhookSecretRotated:
        """A new secret (shown this once); the old one also signs every request for `overlap_seconds`."""
        return self._run(self._calls.rotate_webhook_secret(webhook_id, overlap_seconds=overlap_seconds))

    def webhook_attempts(
        self, webhook_id: WebhookId, *, limit: int | None = None, before: int | None = None
    ) -> WebhookAttemptList:
        """The endpoint's requests, newest first; `before=page.next_before` is the next page."""
        return self._run(self._calls.webhook_attempts(webhook_id, limit=limit, before=before))

    def resend_webhook(
        self,
        webhook_id: WebhookId,
        *,
        event_id: UUID | str | None = None,
        since: datetime | str | None = None,
    ) -> WebhookResent:
        """Send one event again (`event_id`), or every event of the shop's orders since `since` (of the
        endpoint's types); exactly one of the two."""
        return self._run(self._calls.resend_webhook(webhook_id, event_id=event_id, since=since))

    def delete_webhook(self, webhook_id: WebhookId) -> None:
        """Remove the endpoint and what was pending for it."""
        self._run(self._calls.delete_webhook(webhook_id))

    def health(self, service: Service | str) -> Health:
        return self._run(self._calls.health(service))

    def readiness(self, service: Service | str) -> Readiness:
        """Whether the service reaches its database and the broker (its 503 is an answer too)."""
        return self._run(self._calls.readiness(service))


class AsyncSagaClient(_Base):
    """`SagaClient` for asyncio: the same calls, awaited. Close it (`aclose`), or use `async with`."""

    _http: httpx.AsyncClient

    def _open(self) -> None:
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError("AsyncSagaClient needs an async transport (httpx.AsyncBaseTransport)")
        self._http = httpx.AsyncClient(timeout=self.config.timeout, transport=transport)

    def with_options(
        self, *, timeout: float | None = None, retry: RetryPolicy | None = None
    ) -> AsyncSagaClient:
        return AsyncSagaClient(
            self.config,
            timeout=timeout,
            retry=retry,
            on_checkout=self._calls.on_checkout,
            transport=self._transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSagaClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self, plan: Plan[T]) -> T:
        return await run_async(plan, self._http)

    async def checkout(
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
    ) -> CheckoutResult:
        return await self._run(
            self._calls.checkout(
                customer_id=customer_id,
                lines=lines,
                currency=currency,
                payment_method=payment_method,
                shipping_address=shipping_address,
                order_id=order_id,
                amount_minor=amount_minor,
                idempotency_key=idempotency_key,
            )
        )

    async def payment(self, order_id: str) -> Payment:
        return await self._run(self._calls.payment(order_id))

    async def retry_refund(self, order_id: str) -> RefundQueued:
        return await self._run(self._calls.retry_refund(order_id))

    async def order(self, order_id: str) -> OrderDetail:
        return await self._run(self._calls.order(order_id))

    async def orders(
        self,
        *,
        status: OrderStatus | str | None = None,
        stuck_for: float | timedelta | None = None,
        limit: int = 50,
        offset: int = 0,
        after: str | None = None,
    ) -> OrderPage:
        return await self._run(
            self._calls.orders(status=status, stuck_for=stuck_for, limit=limit, offset=offset, after=after)
        )

    async def cancel(self, order_id: str) -> CancelResult:
        return await self._run(self._calls.cancel(order_id))

    async def wait_for(
        self,
        order_id: str,
        status: str | Iterable[str] | None = None,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - how long the saga may take, as in SagaClient.wait_for
    ) -> OrderDetail:
        return await self._run(self._calls.wait_for(order_id, status, timeout=timeout))

    async def set_stock(self, sku: str, on_hand: int) -> Stock:
        return await self._run(self._calls.set_stock(sku, on_hand))

    async def stock(self, sku: str) -> StockRow:
        return await self._run(self._calls.stock(sku))

    async def inventory(self, *, after: str | None = None, limit: int | None = None) -> StockList:
        return await self._run(self._calls.inventory(after=after, limit=limit))

    async def load_stock(self, counts: Mapping[str, int]) -> StockSet:
        return await self._run(self._calls.load_stock(counts))

    async def shipment(self, order_id: str) -> Shipment:
        return await self._run(self._calls.shipment(order_id))

    async def carrier_step(self, order_id: str, step: str) -> Shipment:
        return await self._run(self._calls.carrier_step(order_id, step))

    async def ship(self, order_id: str) -> Shipment:
        return await self._run(self._calls.ship(order_id))

    async def deliver(self, order_id: str) -> Shipment:
        return await self._run(self._calls.deliver(order_id))

    async def dead_letters(
        self,
        service: Service | str,
        *,
        status: str | None = None,
        order_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> DeadLetterPage:
        return await self._run(
            self._calls.dead_letters(service, status=status, order_id=order_id, limit=limit, offset=offset)
        )

    async def dead_letter(self, service: Service | str, dead_letter_id: int) -> DeadLetter:
        return await self._run(self._calls.dead_letter(service, dead_letter_id))

    async def retry_dead_letter(self, service: Service | str, dead_letter_id: int) -> RetryResults:
        return await self._run(self._calls.retry_dead_letter(service, dead_letter_id))

    async def discard_dead_letter(self, service: Service | str, dead_letter_id: int) -> Discarded:
        return await self._run(self._calls.discard_dead_letter(service, dead_letter_id))

    async def create_webhook(
        self,
        url: str,
        *,
        event_types: Iterable[str] | str | None = None,
        description: str | None = None,
        owner: str | None = None,
    ) -> WebhookEndpointCreated:
        return await self._run(
            self._calls.create_webhook(url, event_types=event_types, description=description, owner=owner)
        )

    async def webhooks(self, *, owner: str | None = None) -> list[WebhookEndpoint]:
        return await self._run(self._calls.webhooks(owner=owner))

    async def webhook(self, webhook_id: WebhookId) -> WebhookEndpoint:
        return await self._run(self._calls.webhook(webhook_id))

    async def disable_webhook(self, webhook_id: WebhookId) -> WebhookEndpoint:
        return await self._run(self._calls.disable_webhook(webhook_id))

    async def enable_webhook(self, webhook_id: WebhookId) -> WebhookEndpoint:
        return await self._run(self._calls.enable_webhook(webhook_id))

    async def rotate_webhook_secret(
        self, webhook_id: WebhookId, *, overlap_seconds: int = 86400
    ) -> WebhookSecretRotated:
        return await self._run(self._calls.rotate_webhook_secret(webhook_id, overlap_seconds=overlap_seconds))

    async def webhook_attempts(
        self, webhook_id: WebhookId, *, limit: int | None = None, before: int | None = None
    ) -> WebhookAttemptList:
        return await self._run(self._calls.webhook_attempts(webhook_id, limit=limit, before=before))

    async def resend_webhook(
        self,
        webhook_id: WebhookId,
        *,
        event_id: UUID | str | None = None,
        since: datetime | str | None = None,
    ) -> WebhookResent:
        return await self._run(self._calls.resend_webhook(webhook_id, event_id=event_id, since=since))

    async def delete_webhook(self, webhook_id: WebhookId) -> None:
        await self._run(self._calls.delete_webhook(webhook_id))

    async def health(self, service: Service | str) -> Health:
        return await self._run(self._calls.health(service))

    async def readiness(self, service: Service | str) -> Readiness:
        return await self._run(self._calls.readiness(service))
