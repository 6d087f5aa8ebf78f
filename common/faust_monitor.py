"""Faust's monitor without its once-a-second sampling: an idle service should not wake for it.

Faust gives every app a `Monitor` sensor that counts messages and events as they pass, and once a second
turns those counts into rates and medians (`events_s`, `messages_s`, the runtime and latency averages) for
Faust's own statistics views and its statsd, Datadog and Prometheus monitors. None of those runs here: a
service serves only its documented routes (common/http_server.py) and exports its own metrics
(common/metrics.py). So the counts stay, and the sampler, one timer wake-up a second in each service, is
not started.
"""

from __future__ import annotations

from faust.sensors import Monitor
from mode import Service


class QuietMonitor(Monitor):
    """Faust's `Monitor`, counting as it does, without the per-second rates that nothing here reads."""

    @Service.task
    async def _sampler(self) -> None:
        """Faust's sampler computes the rates every second; nothing here reads them, so it does not run."""
