"""The refund worker's use cases on fakes (an in-memory store, a scripted provider), in milliseconds: a
refund made, refused or timed out and retried with backoff, given up after the attempt limit, claimed
twice, and queued again by an operator. The SQL store is covered by tests/integration/test_refund_worker.py
and the end-to-end tests."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from payment.domain import PaymentStatus, RefundStatus
from payment.gateway import ChargeResult, GatewayRefused, GatewayTimeout
from payment.refunds import NoFailedRefund, RefundWorker, retry_refund
from tests.fakes.refund_store import FakeRefundStore

LEASE = timedelta(seconds=30)


class ScriptedProvider:
    """A provider whose refund calls answer in turn as scripted: "ok", "refuse" or "timeout" (then "ok"
    once the script runs out). Like a real one, it refunds each idempotency key once. `hold_first` keeps
    the first call waiting until it is set (a worker stuck mid-call)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, object]] = []
        self.refunded: dict[str, str] = {}
        self.hold_first: asyncio.Event | None = None
        self.called = asyncio.Event()  # set by the first call

    async def charge(self, **_: object) -> ChargeResult:
        raise AssertionError("the refund worker never charges")

    async def refund(
        self, *, idempotency_key: str, charge_reference: str, amount_minor: int, currency: str
    ) -> str:
        self.calls.append(
            {"key": idempotency_key, "charge": charge_reference, "amount": amount_minor, "currency": currency}
        )
        self.called.set()
        if len(self.calls) == 1 and self.hold_first is not None:
            await self.hold_first.wait()
        if idempotency_key in self.refunded:
            return self.refunded[idempotency_key]
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "refuse":
            raise GatewayRefused("refund refused by the provider")
        if answer == "timeout":
            raise GatewayTimeout("no answer within 5s")
        self.refunded[idempotency_key] = f"re_{idempotency_key}"
        return self.refunded[idempotency_key]


def worker(store: FakeRefundStore, provider: ScriptedProvider, max_attempts: int = 3) -> RefundWorker:
    return RefundWorker(store=store, gateway=provider, max_attempts=max_attempts, lease=LEASE)


@pytest.fixture()
def store() -> FakeRefundStore:
    return FakeRefundStore()


async def test_a_refund_the_provider_makes_succeeds_refunds_the_payment_and_emits_payment_refunded(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund(amount_minor=1250)
    provider = ScriptedProvider("ok")

    assert await worker(store, provider).run_due() == 1

    assert refund.status is RefundStatus.SUCCEEDED and refund.last_error is None
    assert store.payments[refund.payment_id].status is PaymentStatus.REFUNDED
    [event] = store.events
    assert event.type == "PaymentRefunded" and event.order_id == "acme:o-1"
    assert event.payload["refund_id"] == str(refund.refund_id)
    assert event.payload["amount"] == {"amount_minor": 1250, "currency": "EUR"}


async def test_the_provider_is_asked_with_the_refund_id_as_idempotency_key_and_the_charge_reference(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund(gateway_reference="ch_42", amount_minor=990)
    provider = ScriptedProvider()

    await worker(store, provider).run_due()

    assert provider.calls == [
        {"key": str(refund.refund_id), "charge": "ch_42", "amount": 990, "currency": "EUR"}
    ]


async def test_a_refused_refund_stays_pending_keeps_the_error_and_is_due_again_after_a_backoff(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund()
    provider = ScriptedProvider("refuse")

    await worker(store, provider).run_due()

    assert refund.status is RefundStatus.PENDING and refund.attempts == 1
    assert refund.last_error == "GatewayRefused: refund refused by the provider"
    assert refund.next_attempt_at == store.now + timedelta(seconds=0.5)
    assert store.payments[refund.payment_id].status is PaymentStatus.CAPTURED
    assert store.events == []


async def test_each_retry_waits_twice_as_long_as_the_one_before(store: FakeRefundStore) -> None:
    refund = store.queue_refund()
    refunds = worker(store, ScriptedProvider("timeout", "timeout", "timeout"), max_attempts=5)
    waits = []
    for _ in range(3):
        store.now = refund.next_attempt_at
        await refunds.run_due()
        waits.append(refund.next_attempt_at - store.now)

    assert waits == [timedelta(seconds=0.5), timedelta(seconds=1), timedelta(seconds=2)]


async def test_a_provider_that_times_out_is_retried_and_its_later_refund_recorded_once(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund()
    provider = ScriptedProvider("timeout", "ok")
    refunds = worker(store, provider)

    await refunds.run_due()
    assert (
        refund.status is RefundStatus.PENDING and refund.last_error == "GatewayTimeout: no answer within 5s"
    )
    store.now = refund.next_attempt_at
    await refunds.run_due()

    assert refund.status is RefundStatus.SUCCEEDED and refund.attempts == 2
    assert [event.type for event in store.events] == ["PaymentRefunded"]
    assert [call["key"] for call in provider.calls] == [str(refund.refund_id)] * 2


async def test_a_refund_refused_up_to_the_attempt_limit_fails_for_good_with_payment_refund_failed(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund()
    refunds = worker(store, ScriptedProvider("refuse", "timeout", "refuse"), max_attempts=3)

    for _ in range(3):
        store.now = refund.next_attempt_at
        await refunds.run_due()

    assert refund.status is RefundStatus.FAILED and refund.attempts == 3
    assert refund.last_error == "GatewayRefused: refund refused by the provider"
    assert store.payments[refund.payment_id].status is PaymentStatus.REFUND_FAILED
    [event] = store.events
    assert event.type == "PaymentRefundFailed"
    assert event.payload["attempts"] == 3 and event.payload["reason"] == refund.last_error
    store.now += timedelta(hours=1)
    assert await refunds.run_due() == 0  # a failed refund waits for an operator


async def test_a_refund_not_yet_due_is_not_attempted(store: FakeRefundStore) -> None:
    refund = store.queue_refund()
    refund.next_attempt_at = store.now + timedelta(seconds=1)
    provider = ScriptedProvider()

    assert await worker(store, provider).run_due() == 0
    assert provider.calls == [] and refund.attempts == 0


async def test_a_round_attempts_at_most_its_limit_the_longest_due_first(store: FakeRefundStore) -> None:
    queued = [store.queue_refund(order_id=f"acme:o-{n}") for n in range(3)]
    for waited, refund in zip((1, 3, 2), queued, strict=True):
        refund.next_attempt_at = store.now - timedelta(seconds=waited)
    provider = ScriptedProvider()

    assert await worker(store, provider).run_due(limit=2) == 2

    assert {call["key"] for call in provider.calls} == {str(queued[1].refund_id), str(queued[2].refund_id)}
    assert queued[0].status is RefundStatus.PENDING and queued[0].attempts == 0


async def test_a_refund_claimed_by_one_worker_is_not_claimed_by_another_while_the_lease_holds(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund()
    provider = ScriptedProvider()
    provider.hold_first = asyncio.Event()
    first = asyncio.create_task(worker(store, provider).run_due())
    await provider.called.wait()

    store.now += LEASE - timedelta(seconds=1)
    assert await worker(store, provider).run_due() == 0

    provider.hold_first.set()
    assert await first == 1
    assert refund.status is RefundStatus.SUCCEEDED and len(store.events) == 1


async def test_a_refund_claimed_again_after_its_lease_expired_is_refunded_and_announced_once(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund()
    provider = ScriptedProvider()
    provider.hold_first = asyncio.Event()  # the first worker hangs in its call past its lease
    first = asyncio.create_task(worker(store, provider).run_due())
    await provider.called.wait()

    store.now += LEASE
    assert await worker(store, provider).run_due() == 1  # the second worker claims it, refunds it
    provider.hold_first.set()
    await first  # the first one's call returns at last: the refund is recorded already

    assert refund.status is RefundStatus.SUCCEEDED and refund.attempts == 2
    assert [event.type for event in store.events] == ["PaymentRefunded"]
    assert list(provider.refunded) == [str(refund.refund_id)]  # refunded once at the provider


async def test_an_operator_queues_a_failed_refund_again_with_a_fresh_attempt_budget(
    store: FakeRefundStore,
) -> None:
    refund = store.queue_refund()
    refunds = worker(store, ScriptedProvider("refuse"), max_attempts=1)
    await refunds.run_due()
    assert refund.status is RefundStatus.FAILED

    assert await retry_refund(store, "acme:o-1", by="ops") == refund.refund_id
    assert refund.status is RefundStatus.PENDING and refund.attempts == 0 and refund.retried_by == "ops"
    await refunds.run_due()

    assert refund.status is RefundStatus.SUCCEEDED
    assert [event.type for event in store.events] == ["PaymentRefundFailed", "PaymentRefunded"]


async def test_an_operator_retry_of_an_order_without_a_failed_refund_is_refused(
    store: FakeRefundStore,
) -> None:
    store.queue_refund(order_id="acme:o-1")  # pending, not failed

    with pytest.raises(NoFailedRefund, match="o-1 has no refund in state FAILED"):
        await retry_refund(store, "acme:o-1", by="ops")
    with pytest.raises(NoFailedRefund):
        await retry_refund(store, "acme:o-unknown", by="ops")
