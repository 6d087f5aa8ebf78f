"""How long sagas take (`saga_duration_seconds{outcome}`): which inputs finish a saga (`Changes.finished`)
and what the histogram records for them (`order.metrics.SagaDurations`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.core import Metric

from common.events.delivery import Delivered
from order.metrics import OUTCOMES, SagaDurations
from order.saga import OrderStatus, SagaInput
from order.saga_batch import apply_steps
from tests.unit.test_order_saga_batch import DEADLINE, declined, from_delivery, paid, row, step

CHECKOUT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def counts(metrics: list[Metric]) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for metric in metrics
        for sample in metric.samples
        if sample.name == "saga_duration_seconds_count"
    }


def bucket_counts(metrics: list[Metric], outcome: str) -> dict[str, float]:
    return {
        sample.labels["le"]: sample.value
        for metric in metrics
        for sample in metric.samples
        if sample.name == "saga_duration_seconds_bucket" and sample.labels["outcome"] == outcome
    }


def test_an_order_is_created_with_the_time_its_checkout_was_answered() -> None:
    cause = paid("o-1")
    changes = apply_steps({}, [step("o-1", SagaInput.PAYMENT_COMPLETED, cause)], deadline=DEADLINE)
    assert changes.created["o-1"].checkout_at == cause.occurred_at


def test_a_delivery_finishes_the_saga_and_a_step_along_the_way_does_not() -> None:
    shipped = {"o-1": row("o-1", OrderStatus.SHIPPED), "o-2": row("o-2", OrderStatus.PLACED)}
    changes = apply_steps(
        shipped,
        [
            step("o-1", SagaInput.DELIVERED, from_delivery("o-1", Delivered())),
            step("o-2", SagaInput.CANCEL_REQUESTED),
        ],
        deadline=DEADLINE,
    )
    assert [(order.order_id, order.status) for order in changes.finished] == [("o-1", OrderStatus.COMPLETED)]


def test_a_declined_payment_finishes_the_saga_as_it_creates_the_order() -> None:
    changes = apply_steps({}, [step("o-1", SagaInput.PAYMENT_FAILED, declined("o-1"))], deadline=DEADLINE)
    assert [order.status for order in changes.finished] == [OrderStatus.REJECTED]


def test_a_second_delivered_for_a_finished_saga_finishes_nothing() -> None:
    done = {"o-1": row("o-1", OrderStatus.COMPLETED)}
    changes = apply_steps(
        done, [step("o-1", SagaInput.DELIVERED, from_delivery("o-1", Delivered()))], deadline=DEADLINE
    )
    assert changes.finished == []


def test_every_outcome_is_a_series_before_any_saga_finishes() -> None:
    assert counts(SagaDurations().collect()) == dict.fromkeys(OUTCOMES, 0.0)
    assert set(OUTCOMES) == {"completed", "rejected", "refunded"}


def test_a_finished_saga_is_timed_from_its_checkout_by_its_final_status() -> None:
    durations = SagaDurations(clock=lambda: CHECKOUT + timedelta(seconds=2))
    durations.observe(
        [
            row("o-1", OrderStatus.COMPLETED, checkout_at=CHECKOUT),
            row("o-2", OrderStatus.REFUNDED, checkout_at=CHECKOUT - timedelta(hours=2)),
            row("o-3", OrderStatus.COMPLETED, checkout_at=None),  # recorded before checkout_at was kept
        ]
    )
    metrics = durations.collect()
    assert counts(metrics) == {"completed": 1.0, "rejected": 0.0, "refunded": 1.0}
    completed, refunded = bucket_counts(metrics, "completed"), bucket_counts(metrics, "refunded")
    assert (completed["1.0"], completed["2.5"]) == (0, 1)  # 2 s
    assert (refunded["3600.0"], refunded["21600.0"]) == (0, 1)  # two hours


def test_a_checkout_stamped_after_the_order_services_clock_counts_as_instant() -> None:
    durations = SagaDurations(clock=lambda: CHECKOUT)
    durations.observe([row("o-1", OrderStatus.REJECTED, checkout_at=CHECKOUT + timedelta(seconds=1))])
    assert bucket_counts(durations.collect(), "rejected")["0.025"] == 1
