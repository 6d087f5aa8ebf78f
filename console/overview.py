"""The overview: sagas by status, what is stuck, and each service's health, read from the services' APIs.

Everything here comes from public operator endpoints: order's `/orders` listing (its `total` per status),
each service's `/metrics` (dead letters parked, outbox rows not yet published, events by outcome, the
consumer's lag, and on order the sagas finished) and `/readyz` (its checks, with reasons for an operator).
Throughput is the growth of those counters between the overview's own readings (`console/rates.py`). A
service that does not answer is shown as such; the rest of the page still renders.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from common.config import Service
from common.service_apis import NotFound, Refused, ServiceApis, ServiceUnavailable
from console.rates import Rates

STATUSES = (
    "PLACED",
    "SCHEDULED",
    "CANCELLING",
    "SHIPPED",
    "COMPLETED",
    "REJECTED",
    "CANCELLED",
    "REFUND_FAILED",
    "REFUNDED",
)
# The gauges and counters the overview shows per service (common/metrics.py names them).
SHOWN_METRICS = (
    "saga_dead_letters_parked",
    "saga_outbox_pending",
    "saga_events",
    "saga_consumer_lag",  # summed over the partitions the service's workers hold
    "saga_duration_seconds_count",  # sagas finished, every outcome (order only)
)
# A saga idle this long while not terminal is listed as stuck on the overview.
STUCK_AFTER_SECONDS = 60


def _unless_revoked(exc: Exception) -> None:
    """A key the services no longer accept ends the session (the guard does it): not a cell's error."""
    if isinstance(exc, Refused) and exc.status == 401:
        raise exc


def metric_values(text: str) -> dict[str, float]:
    """The overview's metrics from a Prometheus text page, summed over a service's labels; `saga_events`
    is split by outcome (`saga_events:applied`, `saga_events:parked`, …)."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removesuffix("_total")
            if name not in SHOWN_METRICS:
                continue
            if name == "saga_events":
                name = f"saga_events:{sample.labels.get('outcome', '?')}"
            values[name] = values.get(name, 0.0) + sample.value
    return values


def service_health(apis: ServiceApis, service: Service) -> dict[str, Any]:
    """One service's readiness checks and metrics, or why they could not be read."""
    health: dict[str, Any] = {
        "service": service.value,
        "url": apis.url(service),
        "ready": False,
        "checks": {},
        "error": None,
        "metrics": {},
        "metrics_error": None,
    }
    try:
        readiness = apis.get(service, "/readyz")
        health["ready"] = bool(readiness.get("ready"))
        health["checks"] = readiness.get("checks", {})
    except (ServiceUnavailable, Refused, NotFound) as exc:
        _unless_revoked(exc)
        health["error"] = str(exc)
        return health
    try:
        health["metrics"] = metric_values(apis.get_text(service, "/metrics"))
    except (ServiceUnavailable, Refused, NotFound) as exc:
        _unless_revoked(exc)
        health["metrics_error"] = str(exc)
    return health


def overview(apis: ServiceApis) -> dict[str, Any]:
    """Sagas by status (every shop's), the stuck ones with what each waits for, and each service's health."""
    counts: dict[str, int | None] = {}
    order_error = None
    for status in STATUSES:
        try:
            counts[status] = apis.get(Service.ORDER, "/orders", status=status, limit=1)["total"]
        except (ServiceUnavailable, Refused, NotFound) as exc:
            _unless_revoked(exc)
            counts[status], order_error = None, str(exc)
            break
    stuck: list[dict[str, Any]] = []
    if order_error is None:
        stuck = apis.get(Service.ORDER, "/orders", stuck_for=STUCK_AFTER_SECONDS, limit=20)["items"]
    return {
        "counts": counts,
        "order_error": order_error,
        "stuck": stuck,
        "stuck_after": STUCK_AFTER_SECONDS,
        "services": [service_health(apis, service) for service in Service],
    }


def with_throughput(live: dict[str, Any], rates: Rates) -> dict[str, Any]:
    """The overview with each service's events applied per second and the sagas finished per second,
    over the last minute of readings (None until two readings are known)."""
    for health in live["services"]:
        applied = health["metrics"].get("saga_events:applied")
        key = f"{health['service']}:applied"
        health["applied_per_second"] = None if applied is None else rates.per_second(key, applied)
        if health["service"] == Service.ORDER.value:
            finished = health["metrics"].get("saga_duration_seconds_count")
            live["finished_per_second"] = None if finished is None else rates.per_second("finished", finished)
    return live
