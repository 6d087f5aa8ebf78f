"""What a test session can set: where a running platform is, or how the plugin starts one.

Rule: the environment wins over the ini file (`pytest.ini`, `[tool.pytest.ini_options]`).

A platform already running (e.g. `saga run`, `docker compose up`) is used when its three URLs are given:
`SAGA_PAYMENT_URL`, `SAGA_ORDER_URL`, `SAGA_DELIVERY_URL` (ini `saga_payment_url`…) and, for
`saga_events`, `SAGA_BOOTSTRAP_SERVERS` (ini `saga_bootstrap_servers`). Otherwise the plugin starts one
(the platform must be installed beside it) with `PlatformSettings`: from the ini options
`saga_delivery_deadline`, `saga_auto_progress`, `saga_gateway`, `saga_gateway_url`,
`saga_refund_max_attempts`, `saga_broker_links`, or from a `saga_platform_settings` fixture a conftest
overrides.

The API keys of a running platform come from the environment only (`SAGA_API_KEY`,
`SAGA_CARRIER_API_KEY`, `SAGA_OPERATOR_API_KEY`: `saga_client.config`), never from an ini file, which is
committed; a platform the plugin starts makes its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from saga_client.config import URL_VARIABLES, Service

BOOTSTRAP_VARIABLE = "SAGA_BOOTSTRAP_SERVERS"
URL_OPTIONS = {service: f"saga_{service.value}_url" for service in Service}
BOOTSTRAP_OPTION = "saga_bootstrap_servers"

INI_OPTIONS: dict[str, str] = {
    **{option: f"base URL of a running {service.value} service" for service, option in URL_OPTIONS.items()},
    BOOTSTRAP_OPTION: "Kafka bootstrap servers of a running platform (for saga_events)",
    "saga_delivery_deadline": "seconds delivery has to answer an order (platform started by the plugin)",
    "saga_auto_progress": "seconds after which parcels ship and deliver on their own; `off` (the default)",
    "saga_gateway": "payment gateway of the started platform: simulator (default) or http",
    "saga_gateway_url": "base URL of the payment provider when saga_gateway is http",
    "saga_refund_max_attempts": "refund attempts before REFUND_FAILED (default 3)",
    "saga_broker_links": "true: each service reaches the broker through a link saga_faults can cut"
    " (cut_off_from_broker); false (the default): directly",
}


@dataclass(frozen=True)
class PlatformSettings:
    """How the plugin starts the platform. Auto-progress is off: the test drives the carrier
    (`saga_carrier`), so no parcel ships behind its back. Short gateway timeout and few refund attempts
    keep failure scenarios quick. `environment` adds any other variable of the platform's.

    `broker_links`: each service reaches Kafka through a forwarder in the test process that
    `saga_faults.cut_off_from_broker` cuts. Off by default: every message between a service and the
    broker then crosses it, which made a saga's three hops from payment to SCHEDULED about 90 ms slower
    (p50 135-140 ms instead of 44-54 ms, 30 sagas, a 2-core machine)."""

    delivery_deadline_seconds: float = 30.0
    auto_progress_seconds: float | None = None
    gateway: str = "simulator"
    gateway_url: str | None = None
    gateway_timeout_seconds: float = 0.5
    refund_max_attempts: int = 3
    broker_links: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)

    def variables(self) -> dict[str, str]:
        """The platform's environment variables for these settings."""
        env = {
            "ORDER_DELIVERY_DEADLINE_SECONDS": str(self.delivery_deadline_seconds),
            "PAYMENT_GATEWAY": self.gateway,
            "PAYMENT_GATEWAY_TIMEOUT_SECONDS": str(self.gateway_timeout_seconds),
            "PAYMENT_REFUND_MAX_ATTEMPTS": str(self.refund_max_attempts),
            # `saga_webhooks` listens on 127.0.0.1, which a platform refuses as an endpoint unless told.
            "WEBHOOK_ALLOW_LOCAL_URLS": "true",
        }
        if self.auto_progress_seconds is not None:
            env["DELIVERY_AUTO_PROGRESS_SECONDS"] = str(self.auto_progress_seconds)
        if self.gateway_url is not None:
            env["PAYMENT_GATEWAY_URL"] = self.gateway_url
        return {**env, **self.environment}

    @classmethod
    def from_ini(cls, ini: Callable[[str], str]) -> PlatformSettings:
        """Settings from the ini options (an empty value keeps the default)."""
        defaults = cls()
        auto = ini("saga_auto_progress").strip()
        return cls(
            delivery_deadline_seconds=float(
                ini("saga_delivery_deadline") or defaults.delivery_deadline_seconds
            ),
            auto_progress_seconds=None if auto in ("", "off") else float(auto),
            gateway=ini("saga_gateway") or defaults.gateway,
            gateway_url=ini("saga_gateway_url") or None,
            refund_max_attempts=int(ini("saga_refund_max_attempts") or defaults.refund_max_attempts),
            broker_links=ini("saga_broker_links").strip().lower() in ("true", "1", "yes", "on"),
        )


@dataclass(frozen=True)
class RunningPlatformAddress:
    """Where a platform the plugin did not start is."""

    urls: dict[Service, str]
    bootstrap_servers: str | None


class SettingsError(Exception):
    """The session's settings are incomplete or contradict each other."""


def running_platform_address(
    environ: Mapping[str, str], ini: Callable[[str], str]
) -> RunningPlatformAddress | None:
    """The running platform the settings name, or None when none is named (the plugin starts one)."""
    urls = {
        service: environ.get(URL_VARIABLES[service]) or ini(URL_OPTIONS[service]) or "" for service in Service
    }
    given = {service: url for service, url in urls.items() if url}
    if not given:
        return None
    if len(given) < len(Service):
        missing = [f"{URL_VARIABLES[s]} (ini {URL_OPTIONS[s]})" for s in Service if s not in given]
        raise SettingsError(f"a running platform needs all three URLs; missing: {', '.join(missing)}")
    bootstrap = environ.get(BOOTSTRAP_VARIABLE) or ini(BOOTSTRAP_OPTION) or None
    return RunningPlatformAddress(given, bootstrap)
