"""Receiving the platform's webhooks: check a request's signature (`verify`) and read its event.

    from saga_client import webhooks

    event = webhooks.verify(body, headers.get("Saga-Signature"), secrets=[SECRET])  # InvalidSignature
    if event.type == webhooks.WebhookEventType.ORDER_SHIPPED:
        ...

The contract is `docs/shops/webhooks.md`. Each request is a POST whose body is one event (`WebhookEvent`)
and whose `Saga-Signature` header signs that body with the endpoint's secret (`sign` states the format).

Newer platforms only add: fields of the body, event types, order statuses. A field this client does not
know is ignored. An event type, an order status or a cancellation status it does not know is kept as the
plain string the platform sent, not refused; a known one is the enum member (`WebhookEventType`,
`OrderStatus`, `Cancellation`). Both compare equal to their string, so `event.type == "order.shipped"`
and `event.type == WebhookEventType.ORDER_SHIPPED` work alike; `event.known_type` tells them apart. This
keeps a shop's receiver answering 2xx to events it does not handle yet instead of failing them forever.

Depends on the standard library and pydantic only.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, NoReturn
from uuid import UUID

from pydantic import Field

from saga_client.errors import InvalidSignature
from saga_client.models import Answer, Cancellation, Money, OrderLine, OrderStatus

# The event types live with the other enums (`saga_client.models`); re-exported: receivers import them here.
from saga_client.models import WebhookEventType as WebhookEventType

SIGNATURE_HEADER = "Saga-Signature"
SCHEME = "v1"
# Five minutes either way: the platform signs right before sending, and a request older than this is
# more likely a replay than a slow network (docs/shops/webhooks.md, "Checking the signature").
DEFAULT_TOLERANCE = 300.0
_SHOWN = 120  # characters of a malformed header an error quotes (a header holds no secret)


# A value of a newer platform's that the enum lacks stays a str (tried left to right: the member first).
EventType = Annotated[WebhookEventType | str, Field(union_mode="left_to_right")]
SnapshotStatus = Annotated[OrderStatus | str, Field(union_mode="left_to_right")]
CancellationStatus = Annotated[Cancellation | str, Field(union_mode="left_to_right")]


class CancellationSnapshot(Answer):
    """Where a requested cancel stood: `status` requested, confirmed or refused; `reason` customer,
    timeout or out_of_stock."""

    status: CancellationStatus
    reason: str | None = None


class OrderSnapshot(Answer):
    """The order as it was right after the change an event reports (`order_id` is the shop's own id)."""

    order_id: str
    owner: str  # the shop whose order it is (its key's name)
    status: SnapshotStatus
    payment_id: UUID
    customer_id: str
    amount: Money
    lines: list[OrderLine]
    cancel_reason: str | None = None
    cancellation: CancellationSnapshot | None = None


class WebhookEvent(Answer):
    """The body of a webhook request. `id` is the same on every attempt and every resend: deduplicate by
    it. `sequence` numbers the order's events 1, 2, 3, … in the order they happened (every type counts,
    so an endpoint subscribed to some types sees gaps)."""

    id: UUID
    type: EventType
    version: int
    sequence: int
    occurred_at: datetime
    order: OrderSnapshot

    @property
    def known_type(self) -> bool:
        """Whether this client knows the event's type (False: a newer platform's, kept as a str)."""
        return isinstance(self.type, WebhookEventType)


def parse(body: bytes | str) -> WebhookEvent:
    """The event of a request body, without checking its signature (use `verify` on what arrives over
    the network). A body that is not an event raises pydantic's `ValidationError`."""
    return WebhookEvent.model_validate_json(body)


def sign(body: bytes | str, secrets: Sequence[str] | str, *, timestamp: int | None = None) -> str:
    """The `Saga-Signature` header value the platform sends with `body`, at `timestamp` (now if None).

    The format, exactly: `t=<T>,v1=<H>` with one more `,v1=<H>` per further secret, in the order given,
    no spaces. `<T>` is the Unix time in whole seconds, in decimal. `<H>` is the lowercase hex of
    HMAC-SHA256 keyed with the secret's UTF-8 bytes (the whole string, `whsec_` prefix included) over the
    bytes of `<T>`, then `.`, then the raw body bytes. While a secret is being rotated the platform signs
    with both. A str body is signed as its UTF-8 bytes.
    """
    keys = _secret_list(secrets)
    t = int(time.time()) if timestamp is None else timestamp
    if t < 0:
        raise ValueError("a signature's timestamp is Unix seconds, never negative")
    data = body.encode() if isinstance(body, str) else body
    return ",".join([f"t={t}", *(f"{SCHEME}={_digest(key, str(t), data)}" for key in keys)])


def verify(
    body: bytes | str,
    header: str | None,
    secrets: Sequence[str] | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> WebhookEvent:
    """The event of a webhook request, once its `Saga-Signature` header (`header`, its value) proves the
    platform sent `body`; `InvalidSignature` otherwise.

    Pass the body's raw bytes as received: a body parsed and serialized again is other bytes. `secrets`
    is the endpoint's secret, or several during a rotation: the request is accepted if any `v1` value
    matches any of them (compared in constant time). Schemes other than `v1` (a `v0`, a future one) are
    ignored. The signature is checked before the timestamp, so a request signed with another secret is
    reported as such however old it is; then `t` may be at most `tolerance` seconds from `now` (this
    machine's clock by default) in either direction.
    """
    keys = _secret_list(secrets)
    if not header:
        raise InvalidSignature(
            f"no {SIGNATURE_HEADER} header: not a request of the platform's (or a proxy dropped it)",
            reason="missing",
        )
    t, signatures = _parse_header(header)
    data = body.encode() if isinstance(body, str) else body
    expected = [_digest(key, t, data).encode() for key in keys]
    # Every pair is compared, without stopping at the first match, so the time taken does not say which.
    matched = False
    for given in signatures:
        for digest in expected:
            matched |= hmac.compare_digest(digest, given.lower().encode())
    if not matched:
        raise InvalidSignature(
            f"no {SCHEME} signature of the {SIGNATURE_HEADER} header ({len(signatures)}) matches any of the"
            f" {len(keys)} secret(s) held: a wrong or retired secret, or a body changed on the way"
            " (verify the raw bytes as received)",
            reason="mismatch",
        )
    age = (time.time() if now is None else now) - int(t)
    if age > tolerance:
        raise InvalidSignature(
            f"the {SIGNATURE_HEADER} timestamp t={t} is {age:.0f}s old (tolerance {tolerance:g}s): a replayed"
            " or delayed request, or this machine's clock is off",
            reason="too_old",
        )
    if -age > tolerance:
        raise InvalidSignature(
            f"the {SIGNATURE_HEADER} timestamp t={t} is {-age:.0f}s in the future (tolerance"
            f" {tolerance:g}s): this machine's clock or the sender's is off",
            reason="too_new",
        )
    return parse(data)


def _digest(secret: str, t: str, body: bytes) -> str:
    return hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


def _secret_list(secrets: Sequence[str] | str) -> list[str]:
    """The secrets as a list; a lone str is one secret (not a sequence of one-letter secrets)."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys or not all(isinstance(key, str) and key for key in keys):
        # Says what is wrong, never what the secrets are.
        raise ValueError("webhook secrets: give at least one, each a non-empty str (whsec_…)")
    return keys


def _parse_header(header: str) -> tuple[str, list[str]]:
    """The timestamp as sent (the signed text is that string, not a re-formatted number) and the `v1`
    values of a `Saga-Signature` header; `InvalidSignature` ("malformed") if it is not one."""
    t: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        name, equals, value = item.partition("=")
        if not equals or not name:
            _malformed(header, f"{item[:_SHOWN]!r} is not name=value")
        if name == "t":
            if t is not None:
                _malformed(header, "two timestamps (t=)")
            if not (value.isascii() and value.isdigit()):
                _malformed(header, f"t={value[:_SHOWN]!r} is not Unix seconds")
            t = value
        elif name == SCHEME:
            signatures.append(value)
        # Any other scheme (a v0, a future v2) is skipped: a newer platform may sign with one beside v1.
    if t is None:
        _malformed(header, "no timestamp (t=)")
    if not signatures:
        _malformed(header, f"no {SCHEME} signature")
    return t, signatures


def _malformed(header: str, why: str) -> NoReturn:
    shown = header if len(header) <= _SHOWN else f"{header[:_SHOWN]}…"
    raise InvalidSignature(
        f"malformed {SIGNATURE_HEADER} header ({why}): {shown!r}; expected t=<unix seconds>,{SCHEME}=<hex>",
        reason="malformed",
    )
