"""The routes every service shares (health, readiness, metrics, this document, dead letters): their
parameters and answers. The views are in common/operations_api.py and common/messaging/dead_letter_api.py."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from common.access import OPERATOR, PUBLIC
from common.messaging import dead_letters
from common.messaging.runner import MessageOutcome
from common.openapi import Answer, Link, Route
from common.params import DIGITS, DeadLetterId, Offset, OrderReference, Parameters


class LetterStatus(StrEnum):
    PARKED = dead_letters.PARKED
    RETRIED = dead_letters.RETRIED
    DISCARDED = dead_letters.DISCARDED


class LetterStatusFilter(StrEnum):
    """Which dead letters to list: those in one status, or all."""

    PARKED = dead_letters.PARKED
    RETRIED = dead_letters.RETRIED
    DISCARDED = dead_letters.DISCARDED
    ALL = "all"


class DeadLetterPath(Parameters):
    dead_letter_id: DeadLetterId


class DeadLetterQuery(Parameters):
    status: LetterStatusFilter = Field(default=LetterStatusFilter.PARKED, description="default: parked")
    order_id: OrderReference | None = Field(
        default=None, description="only the dead letters of this order (shop:order_id)"
    )
    limit: Annotated[int, Field(ge=1, le=1000, description="at most this many"), DIGITS] = 100
    offset: Offset = 0


class Health(BaseModel):
    status: str = Field(description="always `ok`: the process answers")
    service: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str] = Field(
        description="`database`, `broker`, `replication` (the saga topics have the copies the cluster"
        " allows) and `api_keys` (the keys file gives keys: a broken one gives none), as the last"
        " background round found them (a round at most once a second): `ok`,"
        " `failed`, `under-replicated`, or `pending` before the first round. With an `operator` key, a"
        " failing check also says why: `failed: <error>`, `under-replicated: <which topics>`"
    )
    authentication: Literal["on", "off"] = Field(
        description="`off` only when SAGA_DISABLE_AUTHENTICATION turned API keys off (development only)"
    )


class DeadLetter(BaseModel):
    """A parked event, as Kafka delivered it, with why it was parked."""

    id: int
    consumer: str
    topic: str
    partition: int
    offset: int
    key: str | None
    order_id: str | None
    event_id: UUID | None
    event_type: str | None
    error: str
    status: LetterStatus
    blocked_by: int | None = Field(description="the earlier dead letter of the same order it waits behind")
    parked_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None = Field(description="the operator who retried or discarded it")
    value: str | None = Field(description="the message as text (bytes that are not UTF-8 replaced)")


class DeadLetterList(BaseModel):
    items: list[DeadLetter]
    limit: int
    offset: int


class RetryResult(BaseModel):
    id: int
    outcome: MessageOutcome


class RetryResults(BaseModel):
    results: list[RetryResult] = Field(description="the retried letter and those parked behind it")


class Discarded(BaseModel):
    id: int
    status: LetterStatus


HEALTH = Route(
    "GET",
    "/healthz",
    "Liveness: the process answers",
    responses={200: Answer("alive", Health)},
    uses_database=False,
    access=PUBLIC,
)
READY = Route(
    "GET",
    "/readyz",
    "Readiness: database and broker reachable, saga topics replicated as the cluster allows (checked in"
    " the background; why a check fails only with an operator key)",
    responses={200: Answer("ready", Readiness), 503: Answer("not ready: see checks", Readiness)},
    uses_database=False,
    access=PUBLIC,
)
METRICS = Route(
    "GET",
    "/metrics",
    "Prometheus metrics",
    responses={200: Answer("Prometheus text format", {"type": "string"}, media_type="text/plain")},
    access=OPERATOR,
)
OPENAPI = Route(
    "GET",
    "/openapi.json",
    "This document",
    responses={200: Answer("the OpenAPI 3.1 document", {"type": "object"})},
    uses_database=False,
    access=PUBLIC,
)
RETRY_DEAD_LETTER = Route(
    "POST",
    "/dead-letters/{dead_letter_id}/retry",
    "Process a parked event (and those behind it) again",
    path_params=DeadLetterPath,
    responses={
        200: Answer("what each retried event came to", RetryResults),
        404: "not_found: no dead letter with this id",
        409: "not_retryable: it is not parked, or waits behind another",
    },
    access=OPERATOR,
)

DISCARD_DEAD_LETTER = Route(
    "POST",
    "/dead-letters/{dead_letter_id}/discard",
    "Give up on a parked event",
    path_params=DeadLetterPath,
    responses={
        200: Answer("discarded", Discarded),
        404: "not_found: no dead letter with this id",
        409: "not_parked: it was already retried or discarded",
    },
    access=OPERATOR,
)

DEAD_LETTER = Route(
    "GET",
    "/dead-letters/{dead_letter_id}",
    "One parked event",
    path_params=DeadLetterPath,
    responses={
        200: Answer(
            "the dead letter",
            DeadLetter,
            links={
                "retry": Link(RETRY_DEAD_LETTER, {"dead_letter_id": "$request.path.dead_letter_id"}),
                "discard": Link(DISCARD_DEAD_LETTER, {"dead_letter_id": "$request.path.dead_letter_id"}),
            },
        ),
        404: "not_found: no dead letter with this id",
    },
    access=OPERATOR,
)

DEAD_LETTERS = Route(
    "GET",
    "/dead-letters",
    "Parked events, oldest first (by default those still parked), optionally of one order",
    query=DeadLetterQuery,
    responses={
        200: Answer(
            "a page of dead letters",
            DeadLetterList,
            links={"first": Link(DEAD_LETTER, {"dead_letter_id": "$response.body#/items/0/id"})},
        )
    },
    access=OPERATOR,
)

SHARED_ROUTES = (
    HEALTH,
    READY,
    METRICS,
    OPENAPI,
    DEAD_LETTERS,
    DEAD_LETTER,
    RETRY_DEAD_LETTER,
    DISCARD_DEAD_LETTER,
)
