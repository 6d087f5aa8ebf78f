"""Keyset cursors (common/paging.py): what a page hands out comes back as the same sort key, and
anything else is refused as a cursor, never an error."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from common.paging import CURSOR_PATTERN, InvalidCursor, decode_cursor, encode_cursor


def test_a_cursor_comes_back_as_the_sort_key_of_the_last_row() -> None:
    at = datetime(2026, 12, 6, 5, 0, 0, 123456, tzinfo=UTC)
    cursor = encode_cursor(at, "acme:o-1")

    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == (at, "acme:o-1")


@pytest.mark.parametrize(
    "cursor", ["x", "AAAA", "bm90IGpzb24", "WzEsMl0", "WyJub3QgYSB0aW1lIiwiYSJd", "WyIyMDI2LTEyLTA2IiwiYSJd"]
)
def test_anything_but_a_handed_out_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
