"""Secrets out of what we print: a database URL shown to a person or written to a record hides its password.

The rule: the password of a URL (`user:password@host`, or a `password=` query parameter) is replaced by
`***`; everything else stays, so the URL still says which role reaches which database where. The local
stack's URLs carry no password at all (they name a password file), so for them this changes nothing.
"""

from __future__ import annotations

import re

MASK = "***"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """`url` with its password, if any, replaced by `***`.

    The userinfo is everything between `://` and the LAST `@` (a host has no `@`), and the password
    everything in it after the first `:` (a user name has no `:`); so a password may hold any character,
    `/ ? # @ :` included, unencoded as people paste them. An `@` in the path or query after the host
    makes more of the URL hidden, never less.
    """
    scheme = _SCHEME.match(url)
    at = url.rfind("@")
    if scheme is not None and at > scheme.end():
        user, colon, _password = url[scheme.end() : at].partition(":")
        if colon:
            url = f"{url[: scheme.end()]}{user}:{MASK}{url[at:]}"
    return _QUERY_PASSWORD.sub(lambda m: m["head"] + MASK, url)


def has_password(url: str) -> bool:
    """Whether `url` carries a password (one that `mask_url` would hide)."""
    return mask_url(url) != url
