"""What can go wrong, as exceptions that carry the server's own fields.

Every error answer of the platform is JSON `{"error": code, "message": ..., "fields": [...]}` (plus
extra fields such as `order_status`). `error_from_answer` turns one into the exception of its code:

| status | code                                               | exception              |
|--------|----------------------------------------------------|------------------------|
| 401    | unauthenticated (no key, or one it does not know)  | `Unauthenticated`      |
| 403    | forbidden (the key lacks the call's scope)         | `Forbidden`            |
| 400    | invalid_parameter, empty_body, malformed_json      | `ValidationFailed`     |
| 413    | body_too_large                                     | `ValidationFailed`     |
| 422    | validation_failed                                  | `ValidationFailed`     |
| 404    | not_found                                          | `NotFound`             |
| 409    | idempotency_key_reused                             | `IdempotencyConflict`  |
| 409    | order_id_taken                                     | `OrderIdTaken`         |
| 409    | not_cancellable (`order_status`)                   | `NotCancellable`       |
| 409    | no_failed_refund                                   | `NoFailedRefund`       |
| 409    | wrong_state (a carrier step out of order)          | `WrongState`           |
| 409    | others (dead letters not parked, …)                | `Conflict`             |
| 429, 503 | (retried first)                                  | `Unavailable`          |

A call that could not get an answer after its retry budget raises `Unavailable`, with the last cause.
401 and 403 are never retried: the same key would be refused again. Their message adds which key the
call sent (`key_sent`: its role and variable, never the key itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldProblem:
    """One invalid part of a request, as the server named it (e.g. `lines.0.quantity`)."""

    field: str
    message: str


class SagaError(Exception):
    """Base of every error this client raises."""


class ApiError(SagaError):
    """The platform answered with an error: its HTTP status, stable code, message and the whole body."""

    def __init__(
        self, http_status: int, code: str, message: str, body: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{http_status} {code}: {message}")
        self.http_status = http_status
        self.code = code
        self.message = message
        self.body: dict[str, Any] = dict(body or {})


class AccessDenied(ApiError):
    """The platform refused the call's API key (401 or 403). `key_sent` says which key the call sent — its
    role and the variable it came from, never the key — so the message tells what to set."""

    key_sent: str = ""

    def __str__(self) -> str:
        told = super().__str__()
        return f"{told} [sent {self.key_sent}]" if self.key_sent else told


class Unauthenticated(AccessDenied):
    """401: no API key was sent, or the platform knows none like it (mistyped, revoked, another
    platform's). Nothing was done."""


class Forbidden(AccessDenied):
    """403: the platform knows the key, but its scope may not make this call (a shop's key setting stock,
    a carrier's key checking out). Nothing was done."""


class ValidationFailed(ApiError):
    """The request broke the contract (400, 413, 422); `fields` names what is wrong. Nothing changed."""

    @property
    def fields(self) -> list[FieldProblem]:
        return [
            FieldProblem(str(item.get("field", "")), str(item.get("message", "")))
            for item in self.body.get("fields") or []
            if isinstance(item, Mapping)
        ]


class NotFound(ApiError):
    """Nothing is known under that id (an order payment never accepted, an unknown SKU…)."""


class Conflict(ApiError):
    """The thing exists but is not in a state that allows this."""


class IdempotencyConflict(Conflict):
    """The Idempotency-Key was used before with another body: nothing was charged this time."""


class OrderIdTaken(Conflict):
    """Another Idempotency-Key already paid for this order id."""


class NotCancellable(Conflict):
    """The order cannot be cancelled any more: it shipped, or its payment failed (`status`, the order's
    status, says which)."""

    @property
    def status(self) -> str | None:
        value = self.body.get("order_status")
        return None if value is None else str(value)


class NoFailedRefund(Conflict):
    """An operator retried a refund, and the order has no refund in state FAILED."""


class WrongState(Conflict):
    """A carrier step out of order (deliver before ship, ship after a cancel was confirmed)."""


class ServerError(ApiError):
    """The platform failed unexpectedly (5xx other than 503)."""


class Unavailable(SagaError):
    """No answer after the whole retry budget: transport errors, timeouts, 429 or 503 every time.

    `last_cause` is the last failure (also the exception's `__cause__`). For a checkout, `order_id` and
    `idempotency_key` say how to ask again: the same key, and the same body, never charge twice.
    """

    def __init__(
        self,
        message: str,
        *,
        last_cause: BaseException | None,
        attempts: int,
        order_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.last_cause = last_cause
        self.attempts = attempts
        self.order_id = order_id
        self.idempotency_key = idempotency_key


class WaitTimeout(SagaError, TimeoutError):
    """`wait_for` ran out of time; `last` is the last order seen (None if it was never seen)."""

    def __init__(self, message: str, *, order_id: str, last: Any) -> None:
        super().__init__(message)
        self.order_id = order_id
        self.last = last


class UnexpectedOutcome(SagaError):
    """`wait_for` waited for a status the order can no longer reach: its saga ended in `order.status`."""

    def __init__(self, message: str, *, order: Any) -> None:
        super().__init__(message)
        self.order = order


class InvalidSignature(SagaError):
    """A webhook request failed `saga_client.webhooks.verify`: answer it 4xx and do nothing with it.

    `reason` says which check failed: `missing` (no Saga-Signature header), `malformed` (the header is not
    `t=<unix seconds>,v1=<hex>…`), `too_old` / `too_new` (its timestamp is further from this machine's
    clock than the tolerance: a replayed or delayed request, or a clock that is off), `mismatch` (no `v1`
    signature matches a secret held: a wrong or retired secret, or a body changed on the way). The message
    says the same in words; it never contains a secret.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


_BY_CODE: dict[str, type[ApiError]] = {
    "unauthenticated": Unauthenticated,
    "forbidden": Forbidden,
    "invalid_parameter": ValidationFailed,
    "empty_body": ValidationFailed,
    "malformed_json": ValidationFailed,
    "body_too_large": ValidationFailed,
    "validation_failed": ValidationFailed,
    "not_found": NotFound,
    "idempotency_key_reused": IdempotencyConflict,
    "order_id_taken": OrderIdTaken,
    "not_cancellable": NotCancellable,
    "no_failed_refund": NoFailedRefund,
    "wrong_state": WrongState,
}


def error_from_answer(status: int, content: bytes) -> ApiError:
    """The exception for an error answer: by its code first, then by its status."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("error") or f"http_{status}")
    message = str(body.get("message") or content[:200].decode(errors="replace") or "no message")
    kind = _BY_CODE.get(code)
    if kind is None:
        if status == 401:
            kind = Unauthenticated
        elif status == 403:
            kind = Forbidden
        elif status == 404:
            kind = NotFound
        elif status == 409:
            kind = Conflict
        elif status in (400, 413, 422):
            kind = ValidationFailed
        elif status >= 500:
            kind = ServerError
        else:
            kind = ApiError
    return kind(status, code, message, body)
