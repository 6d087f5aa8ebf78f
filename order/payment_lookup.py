"""Asking payment about a checkout the order service has not recorded yet (a port and its HTTP adapter).

Payment answers `202` with the order id before the order service has consumed its PaymentCompleted. In
that window only payment knows the order exists; the order service asks it, read-only, so an order a
shop was told about is never answered `404`. Nothing is written through this port: each service still
owns its data, and each topic keeps its one writer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from common.errors import Unavailable
from common.tenancy import order_id_of

log = logging.getLogger(__name__)

# Payment statuses after which no order will ever be placed (the checkout charged nothing).
_NOTHING_CHARGED = frozenset({"DECLINED", "FAILED"})


@dataclass(frozen=True)
class AcceptedCheckout:
    """What payment knows of an accepted checkout."""

    order_id: str  # as its shop knows it
    owner: str
    payment_id: str
    payment_status: str
    customer_id: str
    amount: dict[str, Any]
    lines: list[dict[str, Any]]
    created_at: str

    @property
    def charge_failed(self) -> bool:
        """Declined or failed: the order will be REJECTED, there is nothing to cancel."""
        return self.payment_status in _NOTHING_CHARGED


class PaymentLookup(Protocol):
    async def accepted_checkout(self, order_id: str) -> AcceptedCheckout | None:
        """The checkout of `order_id`, None if payment never accepted one; raises Unavailable when
        payment cannot be asked."""


def _unavailable(order_id: str) -> Unavailable:
    """What the caller is told when payment cannot be asked: that, and nothing of why (hosts, ports, the
    order service's key), which goes to the log."""
    return Unavailable(
        f"the payment service cannot be asked about order {order_id_of(order_id)} now; retry later"
    )


class HttpPaymentLookup:
    """Payment's `GET /payments/{order_id}`, with a short timeout (a shop is waiting on the answer).

    One client, made on first use inside the service's event loop and kept: making one costs tens of
    milliseconds (its TLS context), which a cancel racing the order's creation would pay every time.
    """

    def __init__(self, base_url: str, api_key: str | None, timeout: float = 2.0) -> None:
        self._base_url = base_url.rstrip("/")
        # A key with the `payment-lookup` scope (ORDER_PAYMENT_API_KEY): it reads any shop's payment, and
        # nothing else.
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def accepted_checkout(self, order_id: str) -> AcceptedCheckout | None:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, headers=self._headers
            )
        try:
            response = await self._http.get(f"/payments/{order_id}")
        except httpx.HTTPError as exc:
            # The error names hosts and ports: for the log, not for the caller.
            log.warning("cannot ask the payment service about order %s: %r", order_id, exc)
            raise _unavailable(order_id) from exc
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            log.error(
                "the payment service refused the order service's key (%d): check ORDER_PAYMENT_API_KEY[_FILE]"
                " (a key with the payment-lookup scope)",
                response.status_code,
            )
            raise _unavailable(order_id)
        if response.status_code != 200:
            log.warning("the payment service answered %d about order %s", response.status_code, order_id)
            raise _unavailable(order_id)
        body = response.json()
        return AcceptedCheckout(
            order_id=body["order_id"],
            owner=body["owner"],
            payment_id=body["payment_id"],
            payment_status=body["status"],
            customer_id=body["customer_id"],
            amount=body["amount"],
            lines=body.get("lines", []),
            created_at=body["created_at"],
        )
