"""The small rules behind the operator CLI: durations, row diffs, one-line event descriptions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from common.events import encode_event, new_envelope
from common.events.order import OrderCancelled
from common.events.values import Money
from saga_tools.ops.diff import diff_tables
from saga_tools.ops.durations import parse_duration
from saga_tools.ops.topic_reader import TailedRecord, describe_record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("45", timedelta(seconds=45)),
        (" 1.5h ", timedelta(minutes=90)),
    ],
)
def test_durations_are_read_as_operators_write_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10x", "m10", "1h 30m", "0s", "-5m", "ten minutes"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_diff_reports_rows_only_on_one_side_and_changed_columns_only() -> None:
    live = {"a": {"status": "COMPLETED", "at": 1}, "b": {"status": "PLACED", "at": 2}, "c": {"status": "X"}}
    rebuilt = {"a": {"status": "COMPLETED", "at": 9}, "b": {"status": "CANCELLED", "at": 2}, "d": {}}
    diff = diff_tables(live, rebuilt, ("status",))
    assert diff.only_live == ["c"]
    assert diff.only_rebuilt == ["d"]
    assert [(d.key, d.changes) for d in diff.different] == [("b", {"status": ("PLACED", "CANCELLED")})]
    assert diff.same == 1  # "a": the differing timestamp is not compared
    assert not diff.clean
    assert diff_tables(live, live, ("status",)).clean


def _record(value: bytes | None, key: bytes | None = b"o-1") -> TailedRecord:
    at = int(datetime(2026, 11, 27, 10, 0, tzinfo=UTC).timestamp() * 1000)
    return TailedRecord("order", 2, 41, at, key, value)


def test_an_event_is_one_line_with_its_type_order_and_business_fields() -> None:
    payload = OrderCancelled(
        payment_id=uuid.uuid4(), amount=Money(amount_minor=1999, currency="EUR"), reason="out_of_stock"
    )
    envelope = new_envelope(payload, order_id="acme:o-1", producer="order")
    line = describe_record(_record(encode_event(envelope)))
    assert line.startswith("2026-11-27T10:00:00.000+00:00 order[2]@41 OrderCancelled v1 order=acme:o-1")
    assert "amount=1999 EUR" in line
    assert "reason=out_of_stock" in line
    assert "\n" not in line


@pytest.mark.parametrize("value", [b"\x00garbage", None, b'{"type": "Nope"}'])
def test_an_undecodable_record_is_shown_with_its_key_and_the_error(value: bytes | None) -> None:
    line = describe_record(_record(value))
    assert "UNDECODABLE order=o-1 error=" in line
