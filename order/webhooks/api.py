"""The `/webhooks` routes: a shop registers and manages the endpoints its orders' events go to; an
operator manages every shop's.

A shop's key manages the endpoints of its own name; an operator's key those of every shop (and names
the shop when it registers one). Another shop's endpoint is answered exactly as one that does not exist.
The secret leaves the platform twice only: in the answer that registers the endpoint and in the answer
that rotates it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from faust.web import Request, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, RootModel
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import Access, Caller, Scope
from common.errors import Conflict, Invalid, NotFound
from common.events.values import OrderLine
from common.openapi import Answer, Callout, Link, Route
from common.params import BIGINT_MAX, DIGITS, PRINTABLE, Parameters
from common.tenancy import OWNER_PATTERN
from common.web import ApiError, Blueprint, JsonView, caller_of
from order.saga import OrderStatus
from order.webhooks import endpoints
from order.webhooks.events import ALL_EVENT_TYPES, BODY_VERSION, ShopEventType, when
from order.webhooks.policy import MAX_URL_LENGTH, RECEIVER_URL, url_problem

# A shop manages its own endpoints, an operator every shop's.
WEBHOOKS = Access.of(Scope.SHOP, Scope.OPERATOR)
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


class Amount(BaseModel):
    amount_minor: int
    currency: str


class CancellationState(BaseModel):
    status: str = Field(description="requested, confirmed or refused")
    reason: str | None = Field(description="customer, timeout or out_of_stock")


class OrderSnapshot(BaseModel):
    """The order right after the change (no shipping address)."""

    order_id: str = Field(description="your order id")
    owner: str
    status: OrderStatus
    payment_id: UUID
    customer_id: str
    amount: Amount
    lines: list[OrderLine]
    cancel_reason: str | None
    cancellation: CancellationState | None


class ShopEvent(BaseModel):
    """What the platform POSTs to an endpoint: one status change of one of the shop's orders (version 1;
    fields are only ever added). Deduplicate by `id`; an order's events carry `sequence` 1, 2, 3…"""

    id: UUID = Field(description="the same on every attempt and every resend")
    type: ShopEventType
    version: int = Field(description=f"{BODY_VERSION}")
    sequence: int = Field(ge=1, description="the order's events, numbered in the order they happened")
    occurred_at: datetime
    order: OrderSnapshot


SIGNATURE_HEADERS = {
    "Saga-Signature": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>' under the endpoint's secret>;"
    " two v1 during a secret's rotation",
    "Saga-Event-Id": "the event's id (as in the body)",
    "Saga-Event-Type": "the event's type (as in the body)",
    "Saga-Delivery-Attempt": "1 on the first attempt, then 2, 3…",
}
CALLOUTS = tuple(
    Callout(
        name=event_type.value,
        summary=when(event_type),
        body=ShopEvent,
        headers=SIGNATURE_HEADERS,
        answer="acknowledged within the timeout (10 s); any other answer, or none, is retried",
    )
    for event_type in ShopEventType
)


class WebhookCreate(BaseModel):
    """An endpoint to register: where to POST, and which events (all if omitted)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        pattern=RECEIVER_URL,
        description="https://host[:port][/path] (http and private addresses only where the platform"
        " allows local URLs)",
    )
    event_types: list[ShopEventType] | None = Field(
        default=None, min_length=1, max_length=len(ALL_EVENT_TYPES), description="omitted: every type"
    )
    description: str | None = Field(default=None, max_length=200, pattern=PRINTABLE)
    owner: Annotated[str, Field(max_length=64, pattern=f"^{OWNER_PATTERN}$")] | None = Field(
        default=None, description="operators: the shop whose orders the endpoint receives (shops: omit)"
    )


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="how long the old secret still signs (as a second `v1`), so receivers can switch",
    )


class ResendOne(BaseModel):
    """One event again (any type, as long as it is one of the shop's orders')."""

    model_config = ConfigDict(extra="forbid")
    event_id: UUID


class ResendSince(BaseModel):
    """Every event of the endpoint's types since a time."""

    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime = Field(description="with a time zone, e.g. 2026-12-06T10:00:00Z")


class Resend(RootModel[ResendOne | ResendSince]):
    """One event again, or every event of the endpoint's types since a time."""


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class WebhookPath(Parameters):
    webhook_id: Annotated[str, Field(pattern=UUID_PATTERN, max_length=36), AfterValidator(UUID)] = Field(
        description="the endpoint's id"
    )


class AttemptQuery(Parameters):
    limit: Annotated[int, Field(ge=1, le=500, description="at most this many"), DIGITS] = 50
    before: Annotated[int, Field(ge=1, le=BIGINT_MAX), DIGITS] | None = Field(
        default=None, description="the previous page's `next_before`: older attempts"
    )


class ListQuery(Parameters):
    owner: Annotated[str, Field(max_length=64, pattern=f"^{OWNER_PATTERN}$")] | None = Field(
        default=None, description="operators: only this shop's endpoints"
    )


class WebhookEndpoint(BaseModel):
    id: UUID
    owner: str
    url: str
    description: str | None
    event_types: list[str] = Field(description="the types it is sent (see the `webhooks` of this document)")
    enabled: bool
    disabled_reason: str | None = Field(description="why it is disabled: by request, or failing too long")
    created_by: str
    created_at: datetime
    updated_at: datetime
    pending: int = Field(description="events waiting to be acknowledged")
    failing_since: datetime | None = Field(description="the first failure since the last success")
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    secret_rotation_ends_at: datetime | None = Field(description="until then the old secret signs too")


class WebhookEndpointCreated(WebhookEndpoint):
    secret: str = Field(description="the signing secret: shown in this answer only")


class WebhookSecretRotated(WebhookEndpoint):
    secret: str = Field(description="the new signing secret: shown in this answer only")


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpoint]


class WebhookAttempt(BaseModel):
    id: int
    event_id: UUID
    event_type: str | None
    order_id: str | None = Field(description="the order (`owner:order_id`)")
    sequence: int | None
    attempt: int
    at: datetime
    status_code: int | None = Field(description="null: no answer (timeout, refused)")
    latency_ms: float
    error: str | None
    delivered: bool


class WebhookAttemptList(BaseModel):
    items: list[WebhookAttempt]
    next_before: int | None = Field(description="pass as `before` for older attempts; null on the last page")


class WebhookResent(BaseModel):
    queued: int = Field(description="events queued to be sent again")


class WebhookDeleted(BaseModel):
    id: UUID
    deleted: bool


_NOT_FOUND = "not_found: no endpoint of yours has this id"
SHOW = Route(
    "GET",
    "/webhooks/{webhook_id}",
    "One webhook endpoint: its state, pending events, last success and failure",
    path_params=WebhookPath,
    responses={200: Answer("the endpoint", WebhookEndpoint), 404: _NOT_FOUND},
    access=WEBHOOKS,
)
CREATE = Route(
    "POST",
    "/webhooks",
    "Register an endpoint for your orders' events; the answer carries its signing secret, once",
    request=WebhookCreate,
    responses={
        201: Answer(
            "the endpoint, with its secret",
            WebhookEndpointCreated,
            links={"show": Link(SHOW, {"webhook_id": "$response.body#/id"})},
        ),
        403: "forbidden: a shop registers endpoints for its own orders only",
        422: "validation_failed: the body breaks the schema; invalid: the URL may not receive webhooks here"
        " (the message says why)",
    },
    access=WEBHOOKS,
)
LIST = Route(
    "GET",
    "/webhooks",
    "Your webhook endpoints (operators: every shop's)",
    query=ListQuery,
    responses={200: Answer("the endpoints", WebhookEndpointList)},
    access=WEBHOOKS,
)
DISABLE = Route(
    "POST",
    "/webhooks/{webhook_id}/disable",
    "Stop sending to an endpoint; its pending events are kept",
    path_params=WebhookPath,
    responses={200: Answer("the endpoint", WebhookEndpoint), 404: _NOT_FOUND},
    access=WEBHOOKS,
)
ENABLE = Route(
    "POST",
    "/webhooks/{webhook_id}/enable",
    "Send to an endpoint again: its pending events go out now, in order",
    path_params=WebhookPath,
    responses={200: Answer("the endpoint", WebhookEndpoint), 404: _NOT_FOUND},
    access=WEBHOOKS,
)
ROTATE = Route(
    "POST",
    "/webhooks/{webhook_id}/rotate-secret",
    "A new signing secret (shown once); the old one signs too until the overlap ends",
    path_params=WebhookPath,
    request=SecretRotation,
    responses={200: Answer("the endpoint, with its new secret", WebhookSecretRotated), 404: _NOT_FOUND},
    access=WEBHOOKS,
)
ATTEMPTS = Route(
    "GET",
    "/webhooks/{webhook_id}/attempts",
    "Every attempt to an endpoint, newest first: event, HTTP status, latency, error",
    path_params=WebhookPath,
    query=AttemptQuery,
    responses={200: Answer("a page of attempts", WebhookAttemptList), 404: _NOT_FOUND},
    access=WEBHOOKS,
)
RESEND = Route(
    "POST",
    "/webhooks/{webhook_id}/resend",
    "Send one event again, or every event of the endpoint's types since a time",
    path_params=WebhookPath,
    request=Resend,
    responses={
        202: Answer("queued", WebhookResent),
        404: _NOT_FOUND,
        409: "unknown_event: no event of your orders has that id",
        422: f"validation_failed: the body breaks the schema; invalid: more than {endpoints.MAX_RESEND}"
        " events since then (resend from a later time)",
    },
    access=WEBHOOKS,
)
DELETE = Route(
    "DELETE",
    "/webhooks/{webhook_id}",
    "Remove an endpoint and what was pending for it",
    path_params=WebhookPath,
    responses={200: Answer("removed", WebhookDeleted), 404: _NOT_FOUND},
    access=WEBHOOKS,
)
ROUTES = (CREATE, LIST, SHOW, DISABLE, ENABLE, ROTATE, ATTEMPTS, RESEND, DELETE)


@dataclass(frozen=True)
class WebhookDependencies:
    engine: AsyncEngine
    allow_local_urls: bool
    endpoints_changed: Callable[[], None]  # tells this worker's sender an endpoint may now receive


blueprint = Blueprint("webhooks")


def managed_owners(caller: Caller) -> frozenset[str] | None:
    """Whose endpoints `caller` manages: every shop's (None) for an operator, else its own."""
    return None if Scope.OPERATOR in caller.scopes else frozenset({caller.name})


class UnknownEvent(Conflict):
    """A resend names an event that is none of the shop's (the endpoint exists: not a 404)."""

    code = "unknown_event"


def _not_found() -> NotFound:
    return NotFound("webhook endpoint not found")


@blueprint.serve(CREATE, LIST)
class Webhooks(JsonView):
    async def post(self, request: Request, body: WebhookCreate) -> Response:
        needs = self.dependency(WebhookDependencies)
        caller = caller_of(request)
        owner = body.owner or caller.name
        if managed_owners(caller) is not None and owner != caller.name:
            raise ApiError(403, "forbidden", "a shop registers endpoints for its own orders only")
        problem = url_problem(body.url, allow_local=needs.allow_local_urls)
        if problem is not None:
            raise Invalid(f"url: {problem}")
        types = [t.value for t in (body.event_types or ALL_EVENT_TYPES)]
        async with needs.engine.begin() as conn:
            found, secret = await endpoints.create(
                conn,
                owner=owner,
                url=body.url,
                event_types=sorted(set(types), key=types.index),
                description=body.description,
                by=caller.name,
            )
        needs.endpoints_changed()
        return self.json({**describe(found), "secret": secret}, status=201)

    async def get(self, request: Request, query: ListQuery) -> Response:
        owners = managed_owners(caller_of(request))
        if query.owner is not None:
            owners = frozenset({query.owner}) if owners is None else owners & {query.owner}
        async with self.dependency(WebhookDependencies).engine.connect() as conn:
            rows = await endpoints.list_endpoints(conn, owners)
        return self.json({"items": [describe(row) for row in rows]})


@blueprint.serve(SHOW, DELETE)
class Webhook(JsonView):
    async def get(self, request: Request, webhook_id: UUID) -> Response:
        async with self.dependency(WebhookDependencies).engine.connect() as conn:
            found = await endpoints.get(conn, webhook_id, managed_owners(caller_of(request)))
        if found is None:
            raise _not_found()
        return self.json(describe(found))

    async def delete(self, request: Request, webhook_id: UUID) -> Response:
        async with self.dependency(WebhookDependencies).engine.begin() as conn:
            deleted = await endpoints.delete(conn, webhook_id, managed_owners(caller_of(request)))
        if not deleted:
            raise _not_found()
        return self.json({"id": str(webhook_id), "deleted": True})


async def _set_enabled(view: JsonView, request: Request, webhook_id: UUID, *, enabled: bool) -> Response:
    needs = view.dependency(WebhookDependencies)
    async with needs.engine.begin() as conn:
        found = await endpoints.set_enabled(
            conn, webhook_id, managed_owners(caller_of(request)), enabled=enabled
        )
    if found is None:
        raise _not_found()
    if enabled:
        needs.endpoints_changed()
    return view.json(describe(found))


@blueprint.serve(DISABLE)
class DisableWebhook(JsonView):
    async def post(self, request: Request, webhook_id: UUID) -> Response:
        return await _set_enabled(self, request, webhook_id, enabled=False)


@blueprint.serve(ENABLE)
class EnableWebhook(JsonView):
    async def post(self, request: Request, webhook_id: UUID) -> Response:
        return await _set_enabled(self, request, webhook_id, enabled=True)


@blueprint.serve(ROTATE)
class RotateSecret(JsonView):
    async def post(self, request: Request, webhook_id: UUID, body: SecretRotation) -> Response:
        overlap = timedelta(seconds=body.overlap_seconds)
        async with self.dependency(WebhookDependencies).engine.begin() as conn:
            rotated = await endpoints.rotate_secret(
                conn, webhook_id, managed_owners(caller_of(request)), overlap
            )
        if rotated is None:
            raise _not_found()
        found, secret = rotated
        return self.json({**describe(found), "secret": secret})


@blueprint.serve(ATTEMPTS)
class Attempts(JsonView):
    async def get(self, request: Request, webhook_id: UUID, query: AttemptQuery) -> Response:
        async with self.dependency(WebhookDependencies).engine.connect() as conn:
            if await endpoints.get(conn, webhook_id, managed_owners(caller_of(request))) is None:
                raise _not_found()
            rows = await endpoints.attempts(conn, webhook_id, limit=query.limit, before=query.before)
        items = [describe_attempt(row) for row in rows]
        last = rows[-1]["id"] if len(rows) == query.limit else None
        return self.json({"items": items, "next_before": last})


@blueprint.serve(RESEND)
class ResendEvents(JsonView):
    async def post(self, request: Request, webhook_id: UUID, body: Resend) -> Response:
        event_id = body.root.event_id if isinstance(body.root, ResendOne) else None
        since = body.root.since if isinstance(body.root, ResendSince) else None
        needs = self.dependency(WebhookDependencies)
        async with needs.engine.begin() as conn:
            if await endpoints.get(conn, webhook_id, managed_owners(caller_of(request))) is None:
                raise _not_found()
            if since is not None:
                count = await endpoints.count_resendable(conn, webhook_id, since)
                if count > endpoints.MAX_RESEND:
                    raise Invalid(
                        f"{count} events since {since.isoformat()}: at most {endpoints.MAX_RESEND} at"
                        " once; resend from a later time"
                    )
            queued = await endpoints.resend(conn, webhook_id, event_id=event_id, since=since)
        if event_id is not None and not queued:
            raise UnknownEvent("no event of your orders has this id")
        needs.endpoints_changed()
        return self.json({"queued": queued}, status=202)


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def describe(row: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the API shows it (never its secret)."""
    return {
        "id": str(row["id"]),
        "owner": row["owner"],
        "url": row["url"],
        "description": row["description"],
        "event_types": list(row["event_types"]),
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "created_by": row["created_by"],
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
        "pending": int(row["pending"]),
        "failing_since": _time(row["failing_since"]),
        "last_success_at": _time(row["last_success_at"]),
        "last_failure_at": _time(row["last_failure_at"]),
        "last_error": row["last_error"],
        "secret_rotation_ends_at": _time(row["secret_rotation_ends_at"]),
    }


def describe_attempt(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_id": str(row["event_id"]),
        "event_type": row["event_type"],
        "order_id": row["order_id"],
        "sequence": row["seq"],
        "attempt": row["attempt"],
        "at": _time(row["at"]),
        "status_code": row["status_code"],
        "latency_ms": round(float(row["latency_ms"] or 0.0), 3),
        "error": row["error"],
        "delivered": row["delivered"],
    }
