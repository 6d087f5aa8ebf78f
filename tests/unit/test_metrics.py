"""What `/metrics` shows for a service's counters (Prometheus text format, parsed back)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from common.messaging.runner import RunnerStats
from common.metrics import render_snapshot


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_outcomes_retries_and_batches_are_separate_series() -> None:
    stats = RunnerStats(applied=7, duplicate=2, parked=1, transient_retries=3, batches=2, batched_events=9)

    samples = _samples(render_snapshot("order", stats, published=5, pending=1, parked=1, leading=True))

    service = ("service", "order")
    assert samples[("saga_events_total", (("outcome", "applied"), service))] == 7
    assert samples[("saga_events_total", (("outcome", "duplicate"), service))] == 2
    assert samples[("saga_events_total", (("outcome", "parked"), service))] == 1
    assert samples[("saga_events_total", (("outcome", "not_subscribed"), service))] == 0
    assert ("saga_events_total", (("outcome", "transient_retries"), service)) not in samples
    assert samples[("saga_transient_retries_total", (service,))] == 3
    assert samples[("saga_consumer_batches_total", (service,))] == 2
    assert samples[("saga_consumer_batched_events_total", (service,))] == 9
    assert samples[("saga_outbox_published_total", (service,))] == 5
    assert samples[("saga_outbox_pending", (service,))] == 1
    assert samples[("saga_dead_letters_parked", (service,))] == 1
    assert samples[("saga_outbox_relay_leading", (service,))] == 1
