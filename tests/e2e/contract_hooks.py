"""Schemathesis hooks for the contract test: the one rule of our API that JSON Schema cannot state.

POST /checkout's optional `amount_minor` must equal the sum of the lines (quantity times unit price) or the
checkout is refused with 422; the document says so in words. A generator that only reads the schema
would send a random amount with valid lines and call the 422 a valid request rejected, so every
generated checkout whose amount and lines are valid gets the amount its lines add up to. Anything
invalid is left as generated: the negative cases stay negative.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from payment.checkout import MAX_TOTAL_MINOR, MAX_UNIT_PRICE_MINOR


def _whole(value: Any, low: int, high: int) -> bool:
    """An integer as JSON Schema has it (2.0 is one, true is not) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and low <= value <= high


def _line_total(line: Any) -> int | None:
    if not isinstance(line, dict):
        return None
    quantity, price = line.get("quantity"), line.get("unit_price_minor")
    if _whole(quantity, 1, 10_000) and _whole(price, 0, MAX_UNIT_PRICE_MINOR):
        return int(quantity) * int(price)
    return None


def consistent_amount(body: Any) -> Any:
    """`body` with `amount_minor` set to its lines' total where both are valid; otherwise unchanged."""
    if not isinstance(body, dict) or not _whole(body.get("amount_minor"), 0, MAX_TOTAL_MINOR):
        return body
    lines = body.get("lines")
    if not isinstance(lines, list):
        return body
    totals = [_line_total(line) for line in lines]
    if not totals or any(total is None for total in totals):
        return body
    return {**body, "amount_minor": sum(total for total in totals if total is not None)}


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if case.method.upper() == "POST" and case.path == "/checkout":
        case.body = consistent_amount(case.body)
    return case
