"""What a shop is told, and the rules of sending it (order/webhooks: events, signing, policy), pure.

The events of every change the saga can make are checked against a table written by hand: every pair
(status, input) the saga applies, whether the order had a cancellation under way or not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from order.saga import Cancellation, OrderStatus, Outcome, SagaInput, decide
from order.saga_batch import OrderRow, SagaStep, apply_steps
from order.webhooks.api import ShopEvent
from order.webhooks.events import ShopEventType, events_of, render, snapshot
from order.webhooks.policy import RetryPolicy, acknowledged, retry_delay, should_disable, url_problem
from order.webhooks.signing import SECRET_PREFIX, new_secret, signature_header
from tests.unit.test_order_saga_batch import declined, paid, row

S, E, T = OrderStatus, SagaInput, ShopEventType

# Every applied (status, input) and what the shop is told. A cancellation "requested" before the input
# where the saga can only be there after a cancel (CANCELLING); none otherwise.
TOLD: dict[tuple[OrderStatus | None, SagaInput], tuple[ShopEventType, ...]] = {
    (None, E.PAYMENT_COMPLETED): (T.PLACED,),
    (None, E.PAYMENT_FAILED): (T.REJECTED,),
    (S.PLACED, E.DELIVERY_SCHEDULED): (T.SCHEDULED,),
    (S.PLACED, E.OUT_OF_STOCK): (T.CANCELLED,),
    (S.PLACED, E.CANCEL_REQUESTED): (T.CANCELLATION_REQUESTED,),
    (S.PLACED, E.DEADLINE_EXPIRED): (T.CANCELLATION_REQUESTED,),
    (S.SCHEDULED, E.SHIPPED): (T.SHIPPED,),
    (S.SCHEDULED, E.CANCEL_REQUESTED): (T.CANCELLATION_REQUESTED,),
    (S.CANCELLING, E.CANCELLATION_CONFIRMED): (T.CANCELLATION_CONFIRMED, T.CANCELLED),
    (S.CANCELLING, E.OUT_OF_STOCK): (T.CANCELLATION_CONFIRMED, T.CANCELLED),
    (S.CANCELLING, E.SHIPPED): (T.SHIPPED,),
    (S.SHIPPED, E.DELIVERED): (T.COMPLETED,),
    (S.SHIPPED, E.CANCELLATION_REFUSED): (T.CANCELLATION_REFUSED,),
    (S.COMPLETED, E.CANCELLATION_REFUSED): (T.CANCELLATION_REFUSED,),
    (S.CANCELLED, E.PAYMENT_REFUNDED): (T.REFUNDED,),
    (S.CANCELLED, E.PAYMENT_REFUND_FAILED): (T.REFUND_FAILED,),
    (S.REFUND_FAILED, E.PAYMENT_REFUNDED): (T.REFUNDED,),
}


def _before(status: OrderStatus) -> OrderRow:
    asked = status is S.CANCELLING or status is S.SHIPPED or status is S.COMPLETED
    if not asked:
        return row("acme:o-1", status)
    return row("acme:o-1", status, cancellation=Cancellation.REQUESTED, cancel_reason="customer")


@pytest.mark.parametrize("status", [None, *OrderStatus])
@pytest.mark.parametrize("saga_input", list(SagaInput))
def test_every_change_the_saga_makes_tells_the_shop_exactly_the_table(
    status: OrderStatus | None, saga_input: SagaInput
) -> None:
    decision = decide(status, saga_input)
    if decision.outcome is not Outcome.APPLIED:
        assert (status, saga_input) not in TOLD
        return
    if status is None:
        cause = paid("acme:o-1") if saga_input is E.PAYMENT_COMPLETED else declined("acme:o-1")
        changes = apply_steps({}, [SagaStep("acme:o-1", saga_input, cause)], deadline=None)
    else:
        changes = apply_steps(
            {"acme:o-1": _before(status)}, [SagaStep("acme:o-1", saga_input)], deadline=None
        )
    [transition] = changes.transitions
    assert events_of(transition.before, transition.after) == TOLD[(status, saga_input)]


def test_a_cancel_sent_before_the_order_existed_tells_placed_then_the_request() -> None:
    changes = apply_steps(
        {},
        [SagaStep("acme:o-1", E.PAYMENT_COMPLETED, paid("acme:o-1"))],
        deadline=None,
        early_cancels={"acme:o-1"},
    )
    told = [event for t in changes.transitions for event in events_of(t.before, t.after)]
    assert told == [T.PLACED, T.CANCELLATION_REQUESTED]


def test_an_input_that_changes_nothing_tells_nothing() -> None:
    before = row("acme:o-1", S.SHIPPED)
    changes = apply_steps({"acme:o-1": before}, [SagaStep("acme:o-1", E.SHIPPED)], deadline=None)
    assert changes.transitions == []


def test_the_body_is_the_documented_event_and_the_same_bytes_every_time() -> None:
    order = row("acme:o-1", S.CANCELLED, cancellation=Cancellation.CONFIRMED, cancel_reason="customer")
    event_id, at = uuid.uuid4(), datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    body = render(event_id, T.CANCELLED.value, 5, at, snapshot(order))
    assert body == render(event_id, T.CANCELLED.value, 5, at, json.loads(json.dumps(snapshot(order))))
    event = ShopEvent.model_validate_json(body)
    assert (event.id, event.type, event.sequence, event.version) == (event_id, T.CANCELLED, 5, 1)
    assert event.order.order_id == "o-1" and event.order.owner == "acme"
    assert event.order.cancellation is not None and event.order.cancellation.status == "confirmed"
    assert "shipping_address" not in json.loads(body)["order"]


def test_the_signature_is_an_hmac_of_the_time_and_body_under_each_secret() -> None:
    current, previous = new_secret(), new_secret()
    assert current.startswith(SECRET_PREFIX) and current != previous
    header = signature_header([current, previous], 1765015200, b'{"a":1}')
    t, first, second = header.split(",")
    assert t == "t=1765015200"
    for part, secret in ((first, current), (second, previous)):
        expected = hmac.new(secret.encode(), b'1765015200.{"a":1}', hashlib.sha256).hexdigest()
        assert part == f"v1={expected}"


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=60.0)
    assert [retry_delay(n, policy, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [retry_delay(n, policy, 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert retry_delay(10, policy, 1.0) == 60.0 and retry_delay(10_000, policy, 0.5) == 45.0


def test_only_a_2xx_acknowledges_and_an_endpoint_failing_longer_than_the_bound_is_disabled() -> None:
    assert [acknowledged(code) for code in (200, 204, 299, 301, 404, 500, None)] == [True] * 3 + [False] * 4
    policy = RetryPolicy(disable_after=timedelta(hours=1))
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert not should_disable(None, now, policy)
    assert not should_disable(now - timedelta(minutes=59), now, policy)
    assert should_disable(now - timedelta(hours=1), now, policy)


@pytest.mark.parametrize(
    ("url", "allowed_here", "allowed_locally"),
    [
        ("https://shop.example/hooks", True, True),
        ("https://93.184.216.34/hooks", True, True),
        ("http://shop.example/hooks", False, True),
        ("https://localhost/hooks", False, True),
        ("https://api.localhost/hooks", False, True),
        ("https://127.0.0.1/hooks", False, True),
        ("https://10.1.2.3/hooks", False, True),
        ("https://169.254.169.254/latest/meta-data", False, True),
        ("https://[::1]/hooks", False, False),
        ("https://shop.example/hooks#fragment", False, False),
        ("https://user:pw@shop.example/hooks", False, False),
        ("ftp://shop.example/hooks", False, False),
        ("https://shop.example:port/hooks", False, False),
        ("https:///hooks", False, False),
        ("https://shop.example/" + "a" * 2048, False, False),
    ],
)
def test_a_receiver_url_must_be_public_https_unless_local_urls_are_allowed(
    url: str, allowed_here: bool, allowed_locally: bool
) -> None:
    assert (url_problem(url, allow_local=False) is None) == allowed_here
    assert (url_problem(url, allow_local=True) is None) == allowed_locally
