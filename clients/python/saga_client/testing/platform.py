"""The platform a test session runs against: started by the plugin, or one already running.

Either way a test sees the same thing: three base URLs, the broker's address, and whether the processes
are the plugin's (only then can faults be injected and crashes be reported with their logs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from saga_client.client import SagaClient
from saga_client.config import ClientConfig, RetryPolicy, Service
from saga_client.testing.local import LocalPlatform
from saga_client.testing.settings import PlatformSettings, RunningPlatformAddress


class PlatformUnreachable(Exception):
    """A platform named by URL does not answer, or is not ready; the message says which service."""


@dataclass
class SagaPlatform:
    """What `saga_platform` yields. `local` is the started platform (None for one already running)."""

    urls: dict[Service, str]
    bootstrap_servers: str | None
    settings: PlatformSettings | None = None
    local: LocalPlatform | None = None
    start_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def started_by_plugin(self) -> bool:
        return self.local is not None

    def client_config(self, *, timeout: float = 10.0, retry: RetryPolicy | None = None) -> ClientConfig:
        return ClientConfig(
            payment_url=self.urls[Service.PAYMENT],
            order_url=self.urls[Service.ORDER],
            delivery_url=self.urls[Service.DELIVERY],
            timeout=timeout,
            retry=retry or RetryPolicy(),
        )

    def client(self, *, timeout: float = 10.0, retry: RetryPolicy | None = None) -> SagaClient:
        """A new client of this platform (close it)."""
        return SagaClient(self.client_config(timeout=timeout, retry=retry))

    def describe(self) -> str:
        where = ", ".join(f"{service.value} {url}" for service, url in self.urls.items())
        if self.local is None:
            return f"saga platform (already running): {where}; broker {self.bootstrap_servers or 'not given'}"
        parts = ", ".join(
            f"{name} {seconds:.1f}s" for name, seconds in self.timings.items() if name != "total"
        )
        return (
            f"saga platform started in {self.start_seconds:.1f}s ({parts}): {where};"
            f" broker {self.bootstrap_servers}; logs {self.local.state_dir / 'logs'}"
        )


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
    )


def connect(address: RunningPlatformAddress, *, wait: float = 10.0) -> SagaPlatform:
    """The running platform at `address`, once each service says it is ready (`/readyz`); waits up to
    `wait` seconds for one that is still starting, then `PlatformUnreachable` naming it and why."""
    deadline = time.monotonic() + wait
    for service, url in address.urls.items():
        while True:
            problem = _not_ready(url)
            if problem is None:
                break
            if time.monotonic() > deadline:
                variable = f"SAGA_{service.value.upper()}_URL"
                raise PlatformUnreachable(
                    f"the {service.value} service at {url} ({variable}) {problem};"
                    " start the platform (`saga run`, `docker compose up`) or correct the URL"
                )
            time.sleep(0.25)
    return SagaPlatform(urls=dict(address.urls), bootstrap_servers=address.bootstrap_servers)


def _not_ready(url: str) -> str | None:
    try:
        response = httpx.get(f"{url.rstrip('/')}/readyz", timeout=2.0)
    except httpx.HTTPError as error:
        return f"is unreachable ({type(error).__name__}: {error})"
    if response.status_code != 200:
        return f"is not ready ({response.status_code}: {response.text[:300]})"
    return None
