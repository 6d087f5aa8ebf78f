"""Adapter for an external payment provider over HTTP (PAYMENT_GATEWAY=http, PAYMENT_GATEWAY_URL=...).

The provider's contract, which any real provider adapter maps onto:

    POST /charges  {amount_minor, currency, payment_method}   Idempotency-Key: <payment id>
        200 {"id": "...", "status": "succeeded"}  |  402 {"status": "declined", "reason": "..."}
    POST /refunds  {charge_id, amount_minor, currency}         Idempotency-Key: <refund id>
        200 {"id": "..."}  |  4xx {"reason": "..."} (refused)

Every call carries an idempotency key, so retrying after a timeout or a 5xx is safe: the provider
answers a repeated key with its first answer. A few quick retries happen here; a refund that still
fails is retried later, with longer backoff, by the refund worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from common.retry import Backoff
from payment.gateway import ChargeResult, GatewayRefused, GatewayTimeout


class HttpGateway:
    def __init__(self, base_url: str, *, timeout_seconds: float, attempts: int = 3) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_seconds)
        self._attempts = attempts

    async def charge(
        self, *, idempotency_key: str, amount_minor: int, currency: str, payment_method: str
    ) -> ChargeResult:
        body = {"amount_minor": amount_minor, "currency": currency, "payment_method": payment_method}
        response = await self._post("/charges", body, idempotency_key)
        if response.status_code == 402:
            return ChargeResult(approved=False, decline_reason=_reason(response, "card_declined"))
        if response.status_code != 200:
            raise GatewayRefused(
                f"provider refused the charge ({response.status_code}): {_reason(response, '')}"
            )
        return ChargeResult(approved=True, reference=str(response.json()["id"]))

    async def refund(
        self, *, idempotency_key: str, charge_reference: str, amount_minor: int, currency: str
    ) -> str:
        body = {"charge_id": charge_reference, "amount_minor": amount_minor, "currency": currency}
        response = await self._post("/refunds", body, idempotency_key)
        if response.status_code != 200:
            raise GatewayRefused(
                f"provider refused the refund ({response.status_code}): {_reason(response, '')}"
            )
        return str(response.json()["id"])

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> httpx.Response:
        """POST with retries on timeouts, connection errors and 5xx; 4xx answers are returned as they are."""
        backoff = Backoff(initial=0.1, maximum=1.0)
        last_error = "no attempt made"
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.post(
                    path, json=body, headers={"Idempotency-Key": idempotency_key}
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    return response
                last_error = f"provider answered {response.status_code}"
            if attempt < self._attempts:
                await asyncio.sleep(backoff.next_delay())
        raise GatewayTimeout(f"provider unavailable after {self._attempts} attempts: {last_error}")


def _reason(response: httpx.Response, default: str) -> str:
    try:
        return str(response.json().get("reason") or default)
    except ValueError:
        return response.text[:200] or default
