"""HTTP edge shared by the services: JSON errors that say what is wrong, never a 500 for bad input."""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

import faust.web
from pydantic import BaseModel, ValidationError

from common.db import is_transient_database_error
from common.errors import Conflict, DomainError, Invalid, NotFound, Unavailable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An answer other than success, with the HTTP status and a message for the caller."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, **self.extra}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def validation_error(exc: ValidationError) -> ApiError:
    fields = [
        {"field": ".".join(str(part) for part in err["loc"]) or "<body>", "message": err["msg"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return ApiError(422, "validation_failed", f"invalid request: {summary}", fields=fields)


async def parse_body(request: Any, model: type[M]) -> M:
    """Read a JSON body into `model`, turning every kind of bad input into a 400/422 with a message."""
    raw = await request.read()
    if not raw:
        raise ApiError(400, "empty_body", "the request needs a JSON body")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ApiError(422, "validation_failed", "the body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def query_int(request: Any, name: str, default: int, *, minimum: int = 0, maximum: int = 1000) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_query", f"query parameter {name!r} must be an integer") from exc
    if not minimum <= value <= maximum:
        raise ApiError(400, "bad_query", f"query parameter {name!r} must be between {minimum} and {maximum}")
    return value


# The one place a use case's answer becomes an HTTP status.
STATUS_OF_DOMAIN_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    Unavailable: 503,
}


def status_of(error: DomainError) -> int:
    return next(status for kind, status in STATUS_OF_DOMAIN_ERROR.items() if isinstance(error, kind))


class JsonView(faust.web.View):
    """Base of every endpoint: maps ApiError and the use cases' DomainErrors to their status, a database
    outage to 503, bugs to 500."""

    async def dispatch(self, request: Any) -> Any:
        try:
            return await super().dispatch(request)
        except ApiError as exc:
            return self.json(exc.body(), status=exc.status)
        except DomainError as exc:
            status = status_of(exc)
            headers = {"Retry-After": "1"} if status == 503 else None
            return self.json(exc.body(), status=status, headers=headers)
        except Exception as exc:
            if is_transient_database_error(exc):
                log.warning("database unavailable during %s %s: %r", request.method, request.path, exc)
                return self.json(
                    {"error": "unavailable", "message": "the database is unavailable; retry later"},
                    status=503,
                    headers={"Retry-After": "1"},
                )
            log.exception("unexpected error in %s %s", request.method, request.path)
            return self.json({"error": "internal", "message": "unexpected server error"}, status=500)
