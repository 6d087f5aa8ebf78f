"""Where the platform is and how patient the client is: base URLs, timeout, retry budget.

Rule: what is passed wins, then the environment, then the defaults of `saga run` on this machine:

| variable                       | default                  |
|--------------------------------|--------------------------|
| `SAGA_PAYMENT_URL`             | `http://127.0.0.1:8001`  |
| `SAGA_ORDER_URL`               | `http://127.0.0.1:8002`  |
| `SAGA_DELIVERY_URL`            | `http://127.0.0.1:8003`  |
| `SAGA_CLIENT_TIMEOUT_SECONDS`  | 10 (per HTTP request)    |
| `SAGA_CLIENT_RETRY_ATTEMPTS`   | 5 (tries of one call)    |
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Service(StrEnum):
    PAYMENT = "payment"
    ORDER = "order"
    DELIVERY = "delivery"


DEFAULT_URLS = {
    Service.PAYMENT: "http://127.0.0.1:8001",
    Service.ORDER: "http://127.0.0.1:8002",
    Service.DELIVERY: "http://127.0.0.1:8003",
}
URL_VARIABLES = {service: f"SAGA_{service.value.upper()}_URL" for service in Service}
TIMEOUT_VARIABLE = "SAGA_CLIENT_TIMEOUT_SECONDS"
ATTEMPTS_VARIABLE = "SAGA_CLIENT_RETRY_ATTEMPTS"


@dataclass(frozen=True)
class RetryPolicy:
    """How often one call is tried, and how long to wait in between.

    A call is tried at most `attempts` times. Between tries the client waits `initial_delay` doubled
    each time up to `max_delay`, spread by ±`jitter` (a fraction), or what the server's Retry-After asks
    (also capped by `max_delay`).
    """

    attempts: int = 5
    initial_delay: float = 0.1
    max_delay: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a call is tried at least once: attempts >= 1")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        base = min(self.max_delay, self.initial_delay * 2**retry)
        return float(base * (1 + random.uniform(-self.jitter, self.jitter)))


@dataclass(frozen=True)
class ClientConfig:
    """The three base URLs (one per service), the per-request timeout and the retry budget."""

    payment_url: str = DEFAULT_URLS[Service.PAYMENT]
    order_url: str = DEFAULT_URLS[Service.ORDER]
    delivery_url: str = DEFAULT_URLS[Service.DELIVERY]
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def url(self, service: Service) -> str:
        return {
            Service.PAYMENT: self.payment_url,
            Service.ORDER: self.order_url,
            Service.DELIVERY: self.delivery_url,
        }[service].rstrip("/")

    def with_options(
        self,
        *,
        payment_url: str | None = None,
        order_url: str | None = None,
        delivery_url: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> ClientConfig:
        """This configuration with what is given changed."""
        return replace(
            self,
            payment_url=payment_url or self.payment_url,
            order_url=order_url or self.order_url,
            delivery_url=delivery_url or self.delivery_url,
            timeout=self.timeout if timeout is None else timeout,
            retry=retry or self.retry,
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        payment_url: str | None = None,
        order_url: str | None = None,
        delivery_url: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> ClientConfig:
        """A configuration from the arguments given, then the environment, then the defaults."""
        env = os.environ if environ is None else environ
        given = {Service.PAYMENT: payment_url, Service.ORDER: order_url, Service.DELIVERY: delivery_url}
        urls = {
            service: given[service] or env.get(URL_VARIABLES[service]) or DEFAULT_URLS[service]
            for service in Service
        }
        if timeout is None:
            timeout = float(env.get(TIMEOUT_VARIABLE, "10"))
        if retry is None:
            retry = RetryPolicy(attempts=int(env.get(ATTEMPTS_VARIABLE, "5")))
        return cls(
            payment_url=urls[Service.PAYMENT],
            order_url=urls[Service.ORDER],
            delivery_url=urls[Service.DELIVERY],
            timeout=timeout,
            retry=retry,
        )
