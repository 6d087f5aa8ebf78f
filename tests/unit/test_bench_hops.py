"""The bench's hop breakdown splits each step of a saga into the parts the services' tables can date."""

from datetime import UTC, datetime, timedelta

from bench.hops import Applied, Written, steps_of, summarise

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_a_hop_between_services_splits_into_outbox_wait_transit_and_applied() -> None:
    written = [
        Written("payment", 1, "acme:o-1", "e1", "PaymentCompleted", at(0), at(3)),
        Written("order", 7, "acme:o-1", "e2", "OrderPlaced", at(12), at(14)),
    ]
    applied = [Applied("order", "e1", at(12))]

    steps = steps_of(written, applied)

    step = steps["PaymentCompleted → OrderPlaced"]
    assert step["outbox_wait"] == [3.0]
    assert step["transit"] == [9.0]
    assert step["applied"] == [0.0]
    assert step["total"] == [12.0]


def test_an_event_a_service_writes_on_its_own_is_time_in_service() -> None:
    written = [
        Written("delivery", 1, "acme:o-1", "e3", "DeliveryScheduled", at(0), at(2)),
        Written("delivery", 2, "acme:o-1", "e4", "Shipped", at(5), at(6)),
        Written("delivery", 3, "acme:o-1", "e5", "Delivered", at(5), at(6)),
    ]

    steps = steps_of(written, [])

    assert steps["DeliveryScheduled → Shipped"]["in_service"] == [5.0]
    assert steps["Shipped → Delivered"]["in_service"] == [0.0]  # one transaction, in the order written


def test_sagas_are_never_chained_into_each_other() -> None:
    written = [
        Written("payment", 1, "acme:o-1", "e1", "PaymentCompleted", at(0), at(1)),
        Written("payment", 2, "acme:o-2", "e2", "PaymentCompleted", at(1), at(2)),
    ]

    assert steps_of(written, []) == {}


def test_the_summary_gives_percentiles_per_part_and_drops_rare_steps() -> None:
    common = {"total": [float(ms) for ms in range(1, 201)], "transit": [1.0] * 200}
    rare = {"total": [5.0], "transit": [5.0]}

    table = summarise({"A → B": common, "A → C": rare})

    assert list(table) == ["A → B"]
    assert table["A → B"]["count"] == 200
    assert table["A → B"]["total"] == {"p50_ms": 100.0, "p99_ms": 198.0}


def test_a_step_the_previous_event_did_not_cause_has_its_total_only() -> None:
    written = [
        Written("delivery", 1, "acme:o-1", "e3", "DeliveryScheduled", at(0), at(2)),
        Written("order", 9, "acme:o-1", "e4", "OrderCancellationRequested", at(3), at(4)),
    ]
    applied = [Applied("order", "e3", at(10))]  # order applied the schedule after the API's cancel

    step = steps_of(written, applied)["DeliveryScheduled → OrderCancellationRequested"]

    assert step["total"] == [3.0]
    assert step["transit"] == step["applied"] == step["outbox_wait"] == []
