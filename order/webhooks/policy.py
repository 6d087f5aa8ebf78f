"""When to try a delivery again, when to give up on an endpoint, and which URLs may receive (pure).

- A delivery is acknowledged by a 2xx answer within the timeout. Anything else is a failure and is
  tried again after `retry_delay`: exponential (base, 2 base, 4 base, … up to `cap`) with equal jitter
  (half of the step fixed, half random), so receivers that come back are not hit by every sender at once.
  A delivery is never dropped: it is retried until it is acknowledged, the endpoint is deleted, or the
  endpoint is disabled (its deliveries then wait, in order, for it to be enabled).
- An endpoint that has failed every attempt for `disable_after` is disabled, with the reason.
- A receiver's URL is http(s) with a host; unless local URLs are allowed (a platform on a developer's
  machine, a test suite), it must be https and its host must not be, or resolve to, a loopback,
  private, link-local or otherwise non-public address: a shop's endpoint must not reach the platform's
  own network (its services, its database, a cloud's metadata address).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# What a receiver's URL looks like: a scheme, a host name or IPv4 address, a port, a path and query of
# visible characters; no credentials, no fragment, no IPv6 literal. (Which hosts may receive:
# `url_problem`.)
RECEIVER_URL = rf"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:{_PORT})?([/?][!-\"$-~]*)?$"


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    cap_seconds: float = 3600.0
    disable_after: timedelta = timedelta(days=3)


def retry_delay(failed_attempts: int, policy: RetryPolicy, random: float) -> float:
    """Seconds before the next attempt after `failed_attempts` (≥ 1) failures; `random` in [0, 1)."""
    assert failed_attempts >= 1 and 0.0 <= random <= 1.0
    step = min(policy.cap_seconds, policy.base_seconds * 2.0 ** min(failed_attempts - 1, 60))
    return step / 2 + random * step / 2


def acknowledged(status_code: int | None) -> bool:
    """A 2xx answer; no answer (timeout, refused, reset) or any other status is a failure."""
    return status_code is not None and 200 <= status_code < 300


def should_disable(failing_since: datetime | None, now: datetime, policy: RetryPolicy) -> bool:
    """An endpoint with no acknowledged attempt since `failing_since` for longer than the policy allows."""
    return failing_since is not None and now - failing_since >= policy.disable_after


def url_problem(url: str, *, allow_local: bool) -> str | None:
    """Why `url` may not receive webhooks, or None if it may (its host's addresses are checked again
    when it is called: a name can resolve elsewhere later)."""
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    if not re.fullmatch(RECEIVER_URL, url):
        return "the URL must be http(s)://host[:port][/path], without credentials or a fragment"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "the URL does not parse"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "the URL must be http(s)://host/…"
    if parts.username or parts.password:
        return "the URL must not carry credentials (the signature authenticates the platform)"
    if allow_local:
        return None
    if parts.scheme != "https":
        return "the URL must be https (this platform does not allow local URLs)"
    host = parts.hostname.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "the URL's host is this machine"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked when it is called
    return None if is_public(address) else "the URL's address is not public"


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address on the internet: not loopback, private, link-local (cloud metadata), multicast,
    reserved or unspecified; an IPv4 address mapped into IPv6 counts as itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
