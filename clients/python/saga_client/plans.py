"""The client's logic without I/O: a call is a plan (a generator) that yields what to do next.

A plan yields `HttpRequest` (send it, and send back the `Reply`, or the transport exception) and `Sleep`
(wait, and send back None); it returns the call's result or raises its error. The sync and the async
client are two thin executors of the same plans (`saga_client.client`), so retrying, backing off,
classifying failures and waiting for an order are written once.

Retry rule: 429 and 503 are retried for every call (the server did nothing, and Retry-After says when
to come back); a request that never reached the server (no connection) likewise; a request that may
have been applied (a timeout or a connection dropped after sending) only for idempotent calls — reads,
a cancel (a second one is answered "ignored"), a stock count, and the checkout, which carries the same
Idempotency-Key and body on every try. After the budget: `Unavailable`, with the last cause. A 401 or
403 is never retried (the same key would be refused again): it is raised as `Unauthenticated` or
`Forbidden` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from saga_client.config import HIDDEN, RetryPolicy
from saga_client.errors import (
    AccessDenied,
    NotFound,
    Unavailable,
    UnexpectedOutcome,
    WaitTimeout,
    error_from_answer,
)
from saga_client.models import TERMINAL, OrderDetail

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

RETRIED_STATUSES = frozenset({429, 503})
# Transport failures that prove the request was never sent: safe to retry whatever the call does.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# `wait_for` polls with this backoff: quick at first (a saga step takes milliseconds), then at most 1/s.
POLL_FIRST, POLL_MAX = 0.05, 1.0
# Headers whose value is a secret: a repr shows that they are there, not what they hold.
SECRET_HEADERS = frozenset({"authorization"})


@dataclass(frozen=True, repr=False)
class HttpRequest:
    method: str
    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        # A plan's request shows up in tracebacks and debuggers; its API key must not.
        headers = {
            name: HIDDEN if name.lower() in SECRET_HEADERS else value for name, value in self.headers.items()
        }
        return (
            f"HttpRequest(method={self.method!r}, url={self.url!r}, params={dict(self.params)!r},"
            f" json={self.json!r}, headers={headers!r})"
        )


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content: bytes


Step = HttpRequest | Sleep
Sent = Reply | Exception | None  # what an executor sends back into a plan
Plan = Generator[Step, Sent, T]


def exchange(
    request: HttpRequest,
    policy: RetryPolicy,
    *,
    idempotent: bool,
    also_answers: Collection[int] = (),
) -> Plan[Reply]:
    """Send `request` until it gets an answer that is not 429/503 (unless listed in `also_answers`),
    retrying per the module's rule; `Unavailable` once the budget is spent."""
    last: BaseException | None = None
    retry_after: float | None = None
    for attempt in range(policy.attempts):
        if attempt:
            yield Sleep(policy.delay(attempt - 1, retry_after))
        outcome = yield request
        retry_after = None
        if isinstance(outcome, Reply):
            if outcome.status not in RETRIED_STATUSES or outcome.status in also_answers:
                return outcome
            last = error_from_answer(outcome.status, outcome.content)
            retry_after = _seconds(outcome.headers.get("retry-after"))
        elif isinstance(outcome, Exception):
            last = outcome
            if not (idempotent or isinstance(outcome, NEVER_SENT)):
                raise Unavailable(
                    f"{request.method} {request.url}: no answer ({outcome!r}) and the request may have been"
                    " applied, so it is not sent again",
                    last_cause=outcome,
                    attempts=attempt + 1,
                ) from outcome
        else:
            raise TypeError(f"an executor answered {outcome!r} to an HTTP request")
    raise Unavailable(
        f"{request.method} {request.url}: no answer after {policy.attempts} tries; last: {last!r}",
        last_cause=last,
        attempts=policy.attempts,
    ) from last


def call(
    request: HttpRequest,
    answer: type[M],
    policy: RetryPolicy,
    *,
    idempotent: bool,
    also_answers: Collection[int] = (),
    key_sent: str = "",
) -> Plan[M]:
    """`exchange`, then the answer as `answer` (any 2xx, or a status in `also_answers`), or the error
    answer raised as its exception (`saga_client.errors`); a refused key's error says `key_sent` (which
    key the request carried, in words)."""
    reply = yield from exchange(request, policy, idempotent=idempotent, also_answers=also_answers)
    if 200 <= reply.status < 300 or reply.status in also_answers:
        return answer.model_validate_json(reply.content)
    error = error_from_answer(reply.status, reply.content)
    if isinstance(error, AccessDenied):
        error.key_sent = key_sent
    raise error


def wait_for_order(
    read: Callable[[], Plan[OrderDetail]],
    order_id: str,
    wanted: Collection[str],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Plan[OrderDetail]:
    """Read the order until its status is in `wanted`, backing off from 50 ms to 1 s between reads.

    Gives up early with `UnexpectedOutcome` when the saga ended (a terminal status) in a status not
    wanted; with `WaitTimeout` after `timeout`. A service that does not answer for a while (restarting)
    is waited for until the timeout; an order payment never accepted is `NotFound` at once.
    """
    deadline = clock() + timeout
    delay = POLL_FIRST
    last: OrderDetail | None = None
    cause: BaseException | None = None
    while True:
        try:
            last = yield from read()
        except NotFound:
            raise
        except Unavailable as unavailable:
            cause = unavailable
        else:
            if last.status in wanted:
                return last
            if last.status in TERMINAL:
                raise UnexpectedOutcome(
                    f"order {order_id} ended {last.status}, never {'/'.join(sorted(wanted))}", order=last
                )
        remaining = deadline - clock()
        if remaining <= 0:
            seen = last.status if last is not None else f"never seen ({cause!r})"
            raise WaitTimeout(
                f"order {order_id} not {'/'.join(sorted(wanted))} after {timeout:g}s; last status: {seen}",
                order_id=order_id,
                last=last,
            ) from cause
        yield Sleep(min(delay, remaining))
        delay = min(POLL_MAX, delay * 2)


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
