"""Where the platform is, who the client is and how patient it is: base URLs, API keys, timeout, retries.

Rule: what is passed wins, then the environment, then the defaults of `saga run` on this machine:

| variable                       | argument           | default                                 |
|--------------------------------|--------------------|-----------------------------------------|
| `SAGA_PAYMENT_URL`             | `payment_url`      | `http://127.0.0.1:8001`                 |
| `SAGA_ORDER_URL`               | `order_url`        | `http://127.0.0.1:8002`                 |
| `SAGA_DELIVERY_URL`            | `delivery_url`     | `http://127.0.0.1:8003`                 |
| `SAGA_API_KEY`                 | `api_key`          | none: the shop's key, and every role's  |
|                                |                    | key when that role has none of its own  |
| `SAGA_CARRIER_API_KEY`         | `carrier_api_key`  | none: `api_key` is sent                 |
| `SAGA_OPERATOR_API_KEY`        | `operator_api_key` | none: `api_key` is sent                 |
| `SAGA_CLIENT_TIMEOUT_SECONDS`  | `timeout`          | 10 (per HTTP request)                   |
| `SAGA_CLIENT_RETRY_ATTEMPTS`   | `retry`            | 5 (tries of one call)                   |

Each operation is made in a role (`Role`, named like the platform's key scopes): the shop checks out,
cancels and reads; the carrier ships and delivers; the operator sets stock, retries refunds and handles
dead letters. A call sends `Authorization: Bearer <key>` with its role's key (health and readiness are
public: no key). A key never appears in a repr, a log line or an error message.
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


class Role(StrEnum):
    """Who makes a call, hence which key it sends; the values are the platform's key scopes."""

    SHOP = "shop"
    CARRIER = "carrier"
    OPERATOR = "operator"


DEFAULT_URLS = {
    Service.PAYMENT: "http://127.0.0.1:8001",
    Service.ORDER: "http://127.0.0.1:8002",
    Service.DELIVERY: "http://127.0.0.1:8003",
}
URL_VARIABLES = {service: f"SAGA_{service.value.upper()}_URL" for service in Service}
TIMEOUT_VARIABLE = "SAGA_CLIENT_TIMEOUT_SECONDS"
ATTEMPTS_VARIABLE = "SAGA_CLIENT_RETRY_ATTEMPTS"
KEY_VARIABLES = {
    Role.SHOP: "SAGA_API_KEY",
    Role.CARRIER: "SAGA_CARRIER_API_KEY",
    Role.OPERATOR: "SAGA_OPERATOR_API_KEY",
}
HIDDEN = "<hidden>"  # what a repr shows in place of a key


def api_keys_from_env(environ: Mapping[str, str]) -> dict[Role, str]:
    """The keys the environment gives, by role (empty variables give none)."""
    return {role: environ[variable] for role, variable in KEY_VARIABLES.items() if environ.get(variable)}


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


@dataclass(frozen=True, repr=False)
class ClientConfig:
    """The three base URLs (one per service), the API keys (`api_key` the shop's, and the fallback of a
    role without a key of its own), the per-request timeout and the retry budget."""

    payment_url: str = DEFAULT_URLS[Service.PAYMENT]
    order_url: str = DEFAULT_URLS[Service.ORDER]
    delivery_url: str = DEFAULT_URLS[Service.DELIVERY]
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api_key: str | None = None
    carrier_api_key: str | None = None
    operator_api_key: str | None = None

    def __repr__(self) -> str:
        # Written out so that no key can reach a log or a traceback through the dataclass' repr.
        keys = {
            "api_key": self.api_key,
            "carrier_api_key": self.carrier_api_key,
            "operator_api_key": self.operator_api_key,
        }
        shown = ", ".join(f"{name}={HIDDEN if key else None}" for name, key in keys.items())
        return (
            f"ClientConfig(payment_url={self.payment_url!r}, order_url={self.order_url!r},"
            f" delivery_url={self.delivery_url!r}, timeout={self.timeout!r}, retry={self.retry!r}, {shown})"
        )

    def url(self, service: Service) -> str:
        return {
            Service.PAYMENT: self.payment_url,
            Service.ORDER: self.order_url,
            Service.DELIVERY: self.delivery_url,
        }[service].rstrip("/")

    def key_for(self, role: Role) -> str | None:
        """The key a call in `role` sends: the role's own, else `api_key`; None when neither is set."""
        return self._own_key(role) or self.api_key

    def key_source(self, role: Role) -> str:
        """Which key a call in `role` sends, in words that name its variable and never show the key."""
        own, shop = KEY_VARIABLES[role], KEY_VARIABLES[Role.SHOP]
        if self.key_for(role) is None:
            return f"no API key (set {own})" if role is Role.SHOP else f"no API key (set {own} or {shop})"
        if self._own_key(role) is None:
            return f"api_key ({shop}), {own} being unset"
        return f"the {role.value} key ({own})"

    def _own_key(self, role: Role) -> str | None:
        return {
            Role.SHOP: self.api_key,
            Role.CARRIER: self.carrier_api_key,
            Role.OPERATOR: self.operator_api_key,
        }[role] or None

    def acting_as(self, role: Role) -> ClientConfig:
        """This configuration with every call sending the key of `role` (e.g. a checker that only holds
        the operator's key, or a test showing what the shop's key may not do)."""
        return replace(self, api_key=self.key_for(role), carrier_api_key=None, operator_api_key=None)

    def with_options(
        self,
        *,
        payment_url: str | None = None,
        order_url: str | None = None,
        delivery_url: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        carrier_api_key: str | None = None,
        operator_api_key: str | None = None,
    ) -> ClientConfig:
        """This configuration with what is given changed."""
        return replace(
            self,
            payment_url=payment_url or self.payment_url,
            order_url=order_url or self.order_url,
            delivery_url=delivery_url or self.delivery_url,
            timeout=self.timeout if timeout is None else timeout,
            retry=retry or self.retry,
            api_key=api_key or self.api_key,
            carrier_api_key=carrier_api_key or self.carrier_api_key,
            operator_api_key=operator_api_key or self.operator_api_key,
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
        api_key: str | None = None,
        carrier_api_key: str | None = None,
        operator_api_key: str | None = None,
    ) -> ClientConfig:
        """A configuration from the arguments given, then the environment, then the defaults."""
        env = os.environ if environ is None else environ
        given = {Service.PAYMENT: payment_url, Service.ORDER: order_url, Service.DELIVERY: delivery_url}
        urls = {
            service: given[service] or env.get(URL_VARIABLES[service]) or DEFAULT_URLS[service]
            for service in Service
        }
        keys = api_keys_from_env(env)
        given_keys = {Role.SHOP: api_key, Role.CARRIER: carrier_api_key, Role.OPERATOR: operator_api_key}
        keys.update({role: key for role, key in given_keys.items() if key})
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
            api_key=keys.get(Role.SHOP),
            carrier_api_key=keys.get(Role.CARRIER),
            operator_api_key=keys.get(Role.OPERATOR),
        )
