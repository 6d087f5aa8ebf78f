"""Keyset pagination: a page ends with a cursor naming its last row, and the next page starts after it
(pure: no I/O).

Why not offsets: skipping N rows costs the database N rows of work on every page, so a deep offset is a
slow query anyone with a key can send; a cursor is a seek on the list's index, as cheap on page 1,000 as
on page 1. The cursor is opaque to callers (base64url of the sort key of the last row) and checked when
it comes back: a cursor that is not one of ours is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

# base64url without padding of a small JSON array: bounded so a query string cannot grow without end.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,400}$"


class InvalidCursor(ValueError):
    """A cursor this service did not hand out."""


def encode_cursor(at: datetime, key: str) -> str:
    """The cursor after the row sorted at (`at`, `key`)."""
    raw = json.dumps([at.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(`at`, `key`) of a cursor from `encode_cursor`; InvalidCursor for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, key = json.loads(raw)
        when = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursor("the cursor is not one this list handed out") from exc
    if not isinstance(key, str) or when.tzinfo is None:
        raise InvalidCursor("the cursor is not one this list handed out")
    return when, key
