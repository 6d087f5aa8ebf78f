"""An answer model as the JSON object a view sends: the one way the services write their answer bodies.

Fields come in the model's order and a null field is kept (the documents declare them required and
nullable). Times are written by `datetime.isoformat` (`2026-12-03T10:00:00.5+00:00`), as the services
always have, never pydantic's `Z`; ids are their canonical strings and enumerations their values.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel


def answer_json(answer: BaseModel) -> dict[str, Any]:
    """`answer` as plain JSON values (dicts, lists, strings, numbers, booleans, None)."""
    body = _plain(answer.model_dump())
    assert isinstance(body, dict)
    return body


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value
