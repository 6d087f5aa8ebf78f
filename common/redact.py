"""Secrets out of what we print: a database URL shown to a person or written to a record hides its password.

The rule: the password of a URL (`user:password@host`, or a `password=` query parameter) is replaced by
`***`; everything else stays, so the URL still says which role reaches which database where. The local
stack's URLs carry no password at all (they name a password file), so for them this changes nothing.
"""

from __future__ import annotations

import re

MASK = "***"

# user:password@ in the authority part: the password runs to the last '@' before the path.
_USERINFO_PASSWORD = re.compile(r"(?P<head>^[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:)[^/?#]*(?=@)")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """`url` with its password, if any, replaced by `***`."""
    url = _USERINFO_PASSWORD.sub(lambda m: m["head"] + MASK, url, count=1)
    return _QUERY_PASSWORD.sub(lambda m: m["head"] + MASK, url)


def has_password(url: str) -> bool:
    """Whether `url` carries a password (one that `mask_url` would hide)."""
    return mask_url(url) != url
