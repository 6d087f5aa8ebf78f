"""The raw chain runs the platform's mix: each kind of saga with the platform's events, on the platform's
topics, ending in the platform's terminal event, and the order worker's moves are the order saga's."""

from __future__ import annotations

from collections import deque

import pytest

from bench.loadgen import MIX, TERMINAL
from bench.raw_chain import CANCEL, CAPTURED, DECLINED, READS, RULES, TOPICS, react
from common.events.catalogue import CATALOGUE
from delivery.lifecycle import STEPS
from order.handlers import INPUT_OF
from order.saga import Emit, OrderStatus, Outcome, SagaInput, decide

SERVICE_OF_TOPIC = {topic: service for service, topic in TOPICS.items()}
EMITTED_BY_SAGA = {
    Emit.ORDER_PLACED: "OrderPlaced",
    Emit.ORDER_CANCELLATION_REQUESTED: "OrderCancellationRequested",
    Emit.ORDER_CANCELLED: "OrderCancelled",
    Emit.ORDER_COMPLETED: "OrderCompleted",
}


Move = tuple[str, str, str | None]  # what order was given (an event, or the customer's cancel), status, emit


def run_saga(kind: str) -> tuple[list[str], list[tuple[str, str]], list[Move]]:
    """One saga of `kind` through the chain's rules, one event at a time: the events in the order they
    were emitted, (service, event) for every transaction that consumed one, and order's moves.

    The driver's checkout starts it; for a cancel, the driver's request follows the OrderPlaced."""
    emitted: list[str] = []
    consumed: list[tuple[str, str]] = []
    order_moves: list[Move] = []
    queue: deque[tuple[str, str]] = deque()

    def emit(service: str, type_: str) -> None:
        emitted.append(type_)
        for reader, topics in READS.items():
            if TOPICS[service] in topics:
                queue.append((reader, type_))
        if kind == "cancel" and type_ == "OrderPlaced":
            order_moves.append(("cancel request", CANCEL.status, CANCEL.emit))
            assert CANCEL.emit is not None
            emit("order", CANCEL.emit)

    checkout = DECLINED if kind == "declined" else CAPTURED
    assert checkout.emit is not None
    emit("payment", checkout.emit)
    while queue:
        service, type_ = queue.popleft()
        steps = react(service, type_, kind)
        if steps:
            consumed.append((service, type_))
        for step in steps:
            if service == "order":
                order_moves.append((type_, step.status, step.emit))
            if step.emit is not None:
                emit(service, step.emit)
    return emitted, consumed, order_moves


# The events of the carrier's steps, in order: the platform's sweep makes every one (`delivery/lifecycle.py`).
STEP_EVENTS = [rules.emits.value for rules in STEPS.values() if rules.auto_progress]
# The platform's events per kind (order/saga.py, delivery/handlers.py, payment/handlers.py + refunds.py).
PLATFORM_EVENTS = {
    "happy": ["PaymentCompleted", "OrderPlaced", "DeliveryScheduled", *STEP_EVENTS, "OrderCompleted"],
    "out_of_stock": ["PaymentCompleted", "OrderPlaced", "OutOfStock", "OrderCancelled", "PaymentRefunded"],
    "declined": ["PaymentFailed"],
    "cancel": [
        "PaymentCompleted",
        "OrderPlaced",
        "OrderCancellationRequested",
        "DeliveryScheduled",
        "CancellationConfirmed",
        "OrderCancelled",
        "PaymentRefunded",
    ],
}
OUTCOME = {"happy": "COMPLETED", "out_of_stock": "REFUNDED", "declined": "REJECTED", "cancel": "REFUNDED"}


def test_the_raw_chain_runs_every_kind_of_the_platforms_mix() -> None:
    assert set(PLATFORM_EVENTS) == set(MIX)


@pytest.mark.parametrize("kind", sorted(MIX))
def test_each_kind_emits_the_platforms_events_and_ends_in_its_terminal_event(kind: str) -> None:
    emitted, _, _ = run_saga(kind)
    assert sorted(emitted) == sorted(PLATFORM_EVENTS[kind])
    terminal = [TERMINAL[type_] for type_ in emitted if type_ in TERMINAL]
    assert terminal == [OUTCOME[kind]]  # one terminal event, the platform's for that kind


@pytest.mark.parametrize("kind", sorted(MIX))
def test_every_raw_event_goes_to_the_topic_the_platform_writes_it_to(kind: str) -> None:
    emitted, consumed, _ = run_saga(kind)
    for service, type_ in consumed:
        assert CATALOGUE[type_].topic in [SERVICE_OF_TOPIC[topic] for topic in READS[service]]
    for rules in RULES.values():
        for type_ in rules:
            assert type_ in CATALOGUE
    assert set(emitted) <= set(CATALOGUE)


@pytest.mark.parametrize("kind", sorted(MIX))
def test_the_order_worker_emits_what_the_order_saga_decides(kind: str) -> None:
    """The raw order never reads its state row (it is the minimal chain), so where the saga ignores an
    input (DeliveryScheduled while a cancel is under way) it still writes one: the same cost as the
    platform's timeline entry. What it emits, and the status of every input the saga applies, are the
    saga's."""
    _, _, moves = run_saga(kind)
    status: OrderStatus | None = None
    for cause, new_status, emit in moves:
        saga_input = SagaInput.CANCEL_REQUESTED if cause == "cancel request" else INPUT_OF[cause]
        decision = decide(status, saga_input)
        assert decision.outcome is not Outcome.REJECTED, (cause, status)
        assert [EMITTED_BY_SAGA[e.kind] for e in decision.emits] == ([emit] if emit else []), (cause, status)
        if decision.outcome is Outcome.APPLIED:
            assert decision.new_status == OrderStatus(new_status), (cause, status)
        status = decision.new_status


def test_a_customer_cancel_goes_through_delivery_and_ends_in_a_refund() -> None:
    _, consumed, _ = run_saga("cancel")
    assert ("delivery", "OrderCancellationRequested") in consumed
    assert ("payment", "OrderCancelled") in consumed
    assert ("order", "PaymentRefunded") in consumed


def test_a_declined_card_places_no_order() -> None:
    emitted, consumed, _ = run_saga("declined")
    assert "OrderPlaced" not in emitted
    assert consumed == [("order", "PaymentFailed")]


def test_a_stock_out_ships_nothing_and_delivery_hears_of_the_cancel() -> None:
    emitted, consumed, _ = run_saga("out_of_stock")
    assert "Shipped" not in emitted
    assert ("delivery", "OrderCancelled") in consumed
