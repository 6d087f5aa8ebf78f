"""The business answers other than success that use cases raise, under one base.

Use cases raise these; the HTTP edge (`common.web.JsonView`) maps each kind to its status once, and the
answer body carries `error` (a stable code), `message` and any extra fields. An event handler that raises
one has its event parked as "rejected" (no stack trace: the reason is the message), see the runner.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A use case could not do what was asked, for a reason the caller can act on."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


class NotFound(DomainError):
    """Nothing is known under that id."""

    code = "not_found"


class Conflict(DomainError):
    """The thing exists but is not in a state that allows this (e.g. a cancel after shipment)."""

    code = "conflict"


class Invalid(DomainError):
    """Well-formed input that breaks a business rule (e.g. a negative shelf count)."""

    code = "invalid"


class Unavailable(DomainError):
    """A service or database this depends on cannot be reached now; retrying later can succeed."""

    code = "unavailable"
