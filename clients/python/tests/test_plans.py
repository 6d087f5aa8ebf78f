"""The plans on their own: what a call does next, driven step by step without any I/O."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from saga_client import RetryPolicy, Unavailable, UnexpectedOutcome, WaitTimeout
from saga_client.models import OrderDetail
from saga_client.plans import HttpRequest, Plan, Reply, Sent, Sleep, exchange, wait_for_order

POLICY = RetryPolicy(attempts=4, initial_delay=0.1, max_delay=0.3, jitter=0.0)
REQUEST = HttpRequest("GET", "http://order.test/orders/o-1")


def drive(plan: Plan[Any], answers: Iterator[Sent]) -> tuple[Any, list[float]]:
    """Run `plan`, answering each request with the next of `answers`; return its result and its sleeps."""
    sleeps: list[float] = []
    sent: Sent = None
    while True:
        try:
            step = plan.send(sent)
        except StopIteration as done:
            return done.value, sleeps
        if isinstance(step, Sleep):
            sleeps.append(step.seconds)
            sent = None
        else:
            sent = next(answers)


def reply(status: int, headers: dict[str, str] | None = None, body: Any = None) -> Reply:
    return Reply(status, headers or {}, json.dumps(body or {"error": "unavailable", "message": "x"}).encode())


def test_backoff_doubles_up_to_its_cap_and_retry_after_wins() -> None:
    answers = iter([reply(503), reply(429, {"retry-after": "0.25"}), reply(503), reply(200)])

    result, sleeps = drive(exchange(REQUEST, POLICY, idempotent=True), answers)

    assert result.status == 200
    assert sleeps == [0.1, 0.25, 0.3]


def test_a_status_the_operation_answers_with_is_not_retried() -> None:
    result, sleeps = drive(exchange(REQUEST, POLICY, idempotent=True, also_answers={503}), iter([reply(503)]))

    assert result.status == 503 and sleeps == []


def test_503_every_time_is_unavailable_with_the_last_answer_as_cause() -> None:
    with pytest.raises(Unavailable) as raised:
        drive(exchange(REQUEST, POLICY, idempotent=True), iter([reply(503)] * 4))

    assert raised.value.attempts == 4
    assert "503" in str(raised.value.last_cause)


def order(status: str) -> OrderDetail:
    return OrderDetail.model_validate(
        {
            "order_id": "o-1",
            "owner": "acme",
            "status": status,
            "payment_id": "6b1f8a1e-0c55-4a8e-9f5c-7b1d2f3e4a5b",
            "customer_id": "c-1",
            "amount": {"amount_minor": 100, "currency": "EUR"},
            "lines": [],
            "cancel_reason": None,
            "waiting_for": None,
            "deadline_at": None,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "timeline": [],
        }
    )


class Reads:
    """Order reads answering the given statuses in turn (an exception is raised instead), and a clock
    that advances by what the plan sleeps."""

    def __init__(self, *statuses: str | Exception) -> None:
        self.statuses = list(statuses)
        self.now = 0.0

    def read(self) -> Plan[OrderDetail]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, Exception):
            raise status
        return order(status)
        yield  # a plan that needs no request

    def clock(self) -> float:
        return self.now


def wait(reads: Reads, wanted: set[str], timeout: float = 10.0) -> tuple[Any, list[float]]:
    plan = wait_for_order(reads.read, "o-1", wanted, timeout, clock=reads.clock)
    sleeps: list[float] = []
    sent: Sent = None
    while True:
        try:
            step = plan.send(sent)
        except StopIteration as done:
            return done.value, sleeps
        assert isinstance(step, Sleep)
        sleeps.append(step.seconds)
        reads.now += step.seconds


def test_wait_for_backs_off_from_50_ms_to_one_second_until_the_status() -> None:
    reads = Reads(*["PLACED"] * 7, "COMPLETED")

    found, sleeps = wait(reads, {"COMPLETED"})

    assert found.status == "COMPLETED"
    assert sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_wait_for_gives_up_at_once_when_the_saga_ended_elsewhere() -> None:
    with pytest.raises(UnexpectedOutcome) as raised:
        wait(Reads("PLACED", "REFUNDED"), {"COMPLETED"})

    assert raised.value.order.status == "REFUNDED"


def test_wait_for_rides_over_a_service_that_does_not_answer_for_a_while() -> None:
    down = Unavailable("down", last_cause=None, attempts=5)

    found, _ = wait(Reads(down, down, "COMPLETED"), {"COMPLETED"})

    assert found.status == "COMPLETED"


def test_wait_for_times_out_with_the_last_order_seen() -> None:
    with pytest.raises(WaitTimeout) as raised:
        wait(Reads("SCHEDULED"), {"COMPLETED"}, timeout=3.0)

    assert raised.value.last.status == "SCHEDULED"
