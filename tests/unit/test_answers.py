"""The services' answers are the models their OpenAPI documents declare, built from rows in one place per
model, and sent as the services always wrote them: fields in the documented order, nulls kept, times with
their offset (`+00:00`, never `Z`), ids and statuses as strings.

Each expected body below is the one the hand-built answers gave for the same row before issue #26, byte
for byte, as Faust's JSON writer (the views') writes it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from faust.utils import json as faust_json
from pydantic import BaseModel

from common.answer_json import answer_json
from delivery.answers import ShipmentAnswer, StockAnswer, StockRow, StockSet
from delivery.inventory import StockLevel
from delivery.lifecycle import STEPS
from order.answers import CancelAnswer, CancellationAnswer, OrderAnswer, OrderDetail
from order.payment_lookup import AcceptedCheckout
from order.saga import Cancellation, OrderStatus, Outcome
from payment.answers import PaymentAnswer, RefundQueued

AT = datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC)
LATER = datetime(2026, 12, 3, 12, 0, 5, tzinfo=timezone(timedelta(hours=2)))
PAYMENT_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
LINES = [{"sku": "SKU-1", "quantity": 2, "unit_price_minor": 500}]
LINES_JSON = '[{"sku":"SKU-1","quantity":2,"unit_price_minor":500}]'


def row(**columns: Any) -> Any:
    """A database row as the reads see it: its columns by name."""
    return SimpleNamespace(**columns)


def sent(answer: BaseModel) -> str:
    """The body a view sends for `answer` (`JsonView.answer`: `answer_json`, then Faust's JSON writer)."""
    return str(faust_json.dumps(answer_json(answer)))


def order_row(**changes: Any) -> Any:
    columns = {
        "order_id": "acme:o-1",
        "status": "CANCELLING",
        "payment_id": PAYMENT_ID,
        "customer_id": "c-1",
        "amount_minor": 1000,
        "currency": "EUR",
        "lines": LINES,
        "cancel_reason": "timeout",
        "cancellation": "requested",
        "deadline_at": None,
        "created_at": AT,
        "updated_at": LATER,
    }
    return row(**{**columns, **changes})


def test_an_order_is_sent_with_its_shops_id_its_cancellation_in_words_and_times_with_their_offset() -> None:
    assert sent(OrderAnswer.from_row(order_row())) == (
        '{"order_id":"o-1","owner":"acme","status":"CANCELLING",'
        '"payment_id":"12345678-1234-5678-1234-567812345678","customer_id":"c-1",'
        f'"amount":{{"amount_minor":1000,"currency":"EUR"}},"lines":{LINES_JSON},"cancel_reason":"timeout",'
        '"cancellation":{"status":"requested","reason":"timeout",'
        '"detail":"waiting for delivery to confirm that nothing has shipped"},'
        '"waiting_for":"delivery\'s answer to the cancellation (CancellationConfirmed, or CancellationRefused'
        ' if shipped)","deadline_at":null,"created_at":"2026-12-03T10:00:00.123456+00:00",'
        '"updated_at":"2026-12-03T12:00:05+02:00"}'
    )


def test_an_ended_order_waits_for_nothing_and_an_order_of_before_owners_is_legacys() -> None:
    answer = OrderAnswer.from_row(order_row(order_id="o-old", status="REFUNDED", cancellation="confirmed"))

    assert (answer.order_id, answer.owner, answer.waiting_for) == ("o-old", "legacy", None)
    assert answer.cancellation is not None and answer.cancellation.status is Cancellation.CONFIRMED


@pytest.mark.parametrize(
    ("state", "detail"),
    [
        (None, None),
        ("requested", "waiting for delivery to confirm that nothing has shipped"),
        ("confirmed", "confirmed by delivery: nothing will ship, the payment is refunded"),
        ("refused", "cancel refused: already shipped"),
    ],
)
def test_a_cancellation_is_told_in_words_a_shop_can_show_and_none_if_nobody_asked(
    state: str | None, detail: str | None
) -> None:
    answer = CancellationAnswer.of(state, "customer")
    assert (answer.detail if answer is not None else None) == detail


def test_a_recorded_order_comes_with_its_timeline_in_the_order_read() -> None:
    entries = [
        row(
            at=AT,
            kind="received",
            event_type="PaymentCompleted",
            event_id=PAYMENT_ID,
            status_before=None,
            status_after="PLACED",
            detail=None,
        ),
        row(
            at=LATER,
            kind="requested",
            event_type="CANCEL_REQUESTED",
            event_id=None,
            status_before="PLACED",
            status_after="CANCELLING",
            detail="the customer asked to cancel (by acme)",
        ),
    ]

    body = sent(OrderDetail.recorded(order_row(), entries))

    assert body.endswith(
        '"timeline":[{"at":"2026-12-03T10:00:00.123456+00:00","kind":"received",'
        '"event_type":"PaymentCompleted","event_id":"12345678-1234-5678-1234-567812345678",'
        '"status_before":null,"status_after":"PLACED","detail":null},'
        '{"at":"2026-12-03T12:00:05+02:00","kind":"requested","event_type":"CANCEL_REQUESTED",'
        '"event_id":null,"status_before":"PLACED","status_after":"CANCELLING",'
        '"detail":"the customer asked to cancel (by acme)"}]}'
    )
    assert body.startswith(sent(OrderAnswer.from_row(order_row()))[:-1] + ',"timeline":')


def test_an_order_not_recorded_yet_is_answered_as_payment_accepted_it_with_the_cancel_kept() -> None:
    amount = {"amount_minor": 1000, "currency": "EUR"}
    checkout = AcceptedCheckout(
        "o-9", "acme", str(PAYMENT_ID), "CAPTURED", "c-1", amount, LINES, "2026-12-03T10:00:00.500000+00:00"
    )

    assert sent(OrderDetail.accepted(checkout, cancel_requested=True)) == (
        '{"order_id":"o-9","owner":"acme","status":"ACCEPTED",'
        '"payment_id":"12345678-1234-5678-1234-567812345678","customer_id":"c-1",'
        f'"amount":{{"amount_minor":1000,"currency":"EUR"}},"lines":{LINES_JSON},'
        '"cancel_reason":"customer","cancellation":{"status":"requested","reason":"customer",'
        '"detail":"waiting for delivery to confirm that nothing has shipped"},'
        '"waiting_for":"the order service to record the payment (PaymentCompleted or PaymentFailed)",'
        '"deadline_at":null,"created_at":"2026-12-03T10:00:00.500000+00:00",'
        '"updated_at":"2026-12-03T10:00:00.500000+00:00","timeline":[]}'
    )
    untouched = OrderDetail.accepted(checkout, cancel_requested=False)
    assert (untouched.cancel_reason, untouched.cancellation) == (None, None)


def test_payments_times_pass_through_an_accepted_order_unchanged() -> None:
    """What payment wrote (`isoformat`) is what the order service answers, with or without an offset."""
    for created_at in (
        "2026-12-03T10:00:00.123456+00:00",
        "2026-12-03T10:00:00+00:00",
        "2026-12-03T10:00:00",
    ):
        checkout = AcceptedCheckout(
            "o-9",
            "acme",
            str(PAYMENT_ID),
            "CAPTURED",
            "c",
            {"amount_minor": 1, "currency": "EUR"},
            [],
            created_at,
        )
        body = answer_json(OrderDetail.accepted(checkout, cancel_requested=False))
        assert (body["created_at"], body["updated_at"]) == (created_at, created_at)


def test_a_cancel_is_answered_with_the_shops_id_and_the_sagas_words() -> None:
    answer = CancelAnswer.of("acme:o-1", OrderStatus.CANCELLING, Cancellation.REQUESTED, Outcome.APPLIED)
    assert sent(answer) == (
        '{"order_id":"o-1","owner":"acme","status":"CANCELLING","cancellation":"requested","outcome":"applied"}'
    )


def test_a_shipment_is_sent_with_its_shortage_and_who_made_its_steps() -> None:
    shipment = row(
        order_id="acme:o-2",
        status="OUT_OF_STOCK",
        lines=LINES,
        short=[{"sku": "SKU-1", "requested": 2, "available": 0}],
        tracking_code=None,
        **{rules.made_by: None for rules in STEPS.values()},
        created_at=AT,
        updated_at=AT,
    )
    # Who made each carrier step, in the carrier's order: "shipped_by":null,"delivered_by":null
    made_by = "".join(f'"{rules.made_by}":null,' for rules in STEPS.values())

    assert sent(ShipmentAnswer.from_row(shipment)) == (
        f'{{"order_id":"o-2","owner":"acme","status":"OUT_OF_STOCK","lines":{LINES_JSON},'
        f'"short":[{{"sku":"SKU-1","requested":2,"available":0}}],"tracking_code":null,{made_by}'
        '"created_at":"2026-12-03T10:00:00.123456+00:00",'
        '"updated_at":"2026-12-03T10:00:00.123456+00:00"}'
    )


def test_a_skus_stock_is_sent_with_what_was_ever_stocked_and_who_counted_it() -> None:
    stock = row(sku="SKU-1", on_hand=3, reserved=2, shipped=1, stocked=6, updated_by=None, updated_at=AT)

    assert sent(StockRow.from_row(stock)) == (
        '{"sku":"SKU-1","on_hand":3,"reserved":2,"shipped":1,"stocked":6,"updated_by":null}'
    )
    assert sent(StockSet.of([StockLevel("SKU-1", 1, 2, 3), StockLevel("SKU-2", 0)])) == (
        '{"items":[{"sku":"SKU-1","on_hand":1,"reserved":2,"shipped":3},'
        '{"sku":"SKU-2","on_hand":0,"reserved":0,"shipped":0}]}'
    )
    assert StockAnswer.from_level(StockLevel("SKU-1", 1)).shipped == 0


def test_a_payment_is_sent_with_its_refund_or_a_null_one() -> None:
    payment = row(
        payment_id=PAYMENT_ID,
        order_id="acme:o-1",
        customer_id="c-1",
        status="REFUND_FAILED",
        amount_minor=1000,
        currency="EUR",
        lines=LINES,
        failure_reason=None,
        gateway_reference="gw-1",
        created_at=AT,
        updated_at=AT,
    )
    refund = row(
        refund_id=PAYMENT_ID,
        status="FAILED",
        reason="customer",
        amount_minor=1000,
        currency="EUR",
        attempts=5,
        last_error="gateway timeout",
        retried_by=None,
        updated_at=LATER,
    )
    paid = (
        '{"payment_id":"12345678-1234-5678-1234-567812345678","order_id":"o-1","owner":"acme",'
        '"customer_id":"c-1","status":"REFUND_FAILED","amount":{"amount_minor":1000,"currency":"EUR"},'
        f'"lines":{LINES_JSON},"failure_reason":null,"gateway_reference":"gw-1",'
        '"created_at":"2026-12-03T10:00:00.123456+00:00","updated_at":"2026-12-03T10:00:00.123456+00:00",'
    )

    assert sent(PaymentAnswer.from_rows(payment, None)) == paid + '"refund":null}'
    assert sent(PaymentAnswer.from_rows(payment, refund)) == paid + (
        '"refund":{"refund_id":"12345678-1234-5678-1234-567812345678","status":"FAILED","reason":"customer",'
        '"amount":{"amount_minor":1000,"currency":"EUR"},"attempts":5,"last_error":"gateway timeout",'
        '"retried_by":null,"updated_at":"2026-12-03T12:00:05+02:00"}}'
    )


def test_a_refund_queued_again_is_pending_for_the_shops_order() -> None:
    assert sent(RefundQueued.of("acme:o-1", PAYMENT_ID)) == (
        '{"order_id":"o-1","owner":"acme","refund_id":"12345678-1234-5678-1234-567812345678",'
        '"status":"PENDING"}'
    )


def test_every_body_sent_reads_back_as_the_answer_it_was() -> None:
    """What a client validates against the document is what was sent: nothing lost on the way."""
    for answer in (
        OrderDetail.recorded(order_row(), []),
        ShipmentAnswer.from_row(
            row(
                order_id="o-3",
                status="DELIVERED",
                lines=LINES,
                short=None,
                tracking_code="TRK-1",
                **(
                    {rules.made_by: "carrier" for rules in STEPS.values()} | {"delivered_by": "auto-progress"}
                ),
                created_at=AT,
                updated_at=LATER,
            )
        ),
        RefundQueued.of("acme:o-1", PAYMENT_ID),
    ):
        assert type(answer).model_validate(answer_json(answer)) == answer
