"""The platform a test session runs against: started by the plugin, or one already running.

Either way a test sees the same thing: three base URLs, the broker's address, the API key of each role
(the started platform's demo keys; for a running one SAGA_API_KEY, SAGA_CARRIER_API_KEY,
SAGA_OPERATOR_API_KEY), and whether the processes are the plugin's (only then can faults be injected and
crashes be reported with their logs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from saga_client.client import SagaClient
from saga_client.config import KEY_VARIABLES, ClientConfig, RetryPolicy, Role, Service
from saga_client.testing.local import LocalPlatform
from saga_client.testing.settings import PlatformSettings, RunningPlatformAddress


class PlatformUnreachable(Exception):
    """A platform named by URL does not answer, or is not ready; the message says which service."""


class MissingApiKey(Exception):
    """A fixture needs a role's key and the session has none; the message names the variable to set."""


@dataclass
class SagaPlatform:
    """What `saga_platform` yields. `local` is the started platform (None for one already running).
    `api_keys`: the key of each role the session has (never in the repr); `authentication`: whether the
    platform asks for keys at all."""

    urls: dict[Service, str]
    bootstrap_servers: str | None
    settings: PlatformSettings | None = None
    local: LocalPlatform | None = None
    start_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    api_keys: dict[Role, str] = field(default_factory=dict, repr=False)
    authentication: bool = True

    @property
    def started_by_plugin(self) -> bool:
        return self.local is not None

    def client_config(
        self, *, timeout: float = 10.0, retry: RetryPolicy | None = None, acting_as: Role | None = None
    ) -> ClientConfig:
        """How to reach this platform: each call sends its role's key, or `acting_as`'s key for every
        call (the shop's key alone, say, to show what it may not do)."""
        config = ClientConfig(
            payment_url=self.urls[Service.PAYMENT],
            order_url=self.urls[Service.ORDER],
            delivery_url=self.urls[Service.DELIVERY],
            timeout=timeout,
            retry=retry or RetryPolicy(),
            api_key=self.api_keys.get(Role.SHOP),
            carrier_api_key=self.api_keys.get(Role.CARRIER),
            operator_api_key=self.api_keys.get(Role.OPERATOR),
        )
        return config if acting_as is None else config.acting_as(acting_as)

    def client(
        self, *, timeout: float = 10.0, retry: RetryPolicy | None = None, acting_as: Role | None = None
    ) -> SagaClient:
        """A new client of this platform (close it)."""
        return SagaClient(self.client_config(timeout=timeout, retry=retry, acting_as=acting_as))

    def require(self, needed_by: str, *roles: Role) -> None:
        """`MissingApiKey` unless the session has a key for each role (one that `api_key` stands in for
        counts) or the platform asks for none."""
        if not self.authentication:
            return
        config = self.client_config()
        missing = [role for role in roles if config.key_for(role) is None]
        if missing:
            raise MissingApiKey(
                f"{needed_by} needs the API key of the {' and '.join(r.value for r in missing)} role on"
                f" the platform at {self.urls[Service.PAYMENT]}: set "
                + " and ".join(_variables(role) for role in missing)
            )

    def describe(self) -> str:
        where = ", ".join(f"{service.value} {url}" for service, url in self.urls.items())
        if self.local is None:
            return (
                f"saga platform (already running): {where}; broker {self.bootstrap_servers or 'not given'};"
                f" {self._keys()}"
            )
        parts = ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in self.timings.items() if name != "total"
        )
        return (
            f"saga platform started in {self.start_seconds:.1f}s ({parts}): {where};"
            f" broker {self.bootstrap_servers}; {self._keys()}; logs {self.local.state_dir / 'logs'}"
        )

    def _keys(self) -> str:
        """Which roles have a key (their names only: a key is never printed)."""
        if not self.authentication:
            return "no API keys asked"
        held = [role.value for role in Role if role in self.api_keys]
        return f"API keys of {', '.join(held)}" if held else "no API key given"


def start_local(local: LocalPlatform) -> SagaPlatform:
    began = time.monotonic()
    local.start()
    return SagaPlatform(
        urls=dict(local.urls),
        bootstrap_servers=local.bootstrap_servers,
        settings=local.settings,
        local=local,
        start_seconds=time.monotonic() - began,
        timings=dict(local.timings),
        api_keys=dict(local.api_keys),
        authentication=local.authentication,
    )


def _variables(role: Role) -> str:
    shop = KEY_VARIABLES[Role.SHOP]
    return shop if role is Role.SHOP else f"{KEY_VARIABLES[role]} (or {shop}, sent by every role)"


def connect(
    address: RunningPlatformAddress, api_keys: Mapping[Role, str] | None = None, *, wait: float = 10.0
) -> SagaPlatform:
    """The running platform at `address`, once each service says it is ready (`/readyz`); waits up to
    `wait` seconds for one that is still starting, then `PlatformUnreachable` naming it and why.
    `api_keys` are the session's keys by role (`saga_client.config.api_keys_from_env`)."""
    deadline = time.monotonic() + wait
    authentication = False
    for service, url in address.urls.items():
        while True:
            problem, asks_for_keys = _readiness(url)
            if problem is None:
                authentication = authentication or asks_for_keys
                break
            if time.monotonic() > deadline:
                variable = f"SAGA_{service.value.upper()}_URL"
                raise PlatformUnreachable(
                    f"the {service.value} service at {url} ({variable}) {problem};"
                    " start the platform (`saga run`, `docker compose up`) or correct the URL"
                )
            time.sleep(0.25)
    return SagaPlatform(
        urls=dict(address.urls),
        bootstrap_servers=address.bootstrap_servers,
        api_keys=dict(api_keys or {}),
        authentication=authentication,
    )


def _readiness(url: str) -> tuple[str | None, bool]:
    """What keeps the service from being ready (None: nothing), and whether it asks for API keys (a
    platform that does not say so is taken to ask)."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/readyz", timeout=2.0)
    except httpx.HTTPError as error:
        return f"is unreachable ({type(error).__name__}: {error})", True
    if response.status_code != 200:
        return f"is not ready ({response.status_code}: {response.text[:300]})", True
    try:
        said = response.json().get("authentication")
    except (ValueError, AttributeError):
        said = None
    return None, said != "off"
