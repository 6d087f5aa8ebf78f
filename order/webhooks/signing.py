"""An endpoint's secrets and the `Saga-Signature` header a receiver checks (pure, except the new secret).

    Saga-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=<…>]

One `v1` per secret that signs: the current one, and during a rotation's overlap the previous one too,
so a receiver holding either accepts the request. The secret string (with its `whsec_` prefix) is the
HMAC key, as its UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # lets secret scanners and people recognise one


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(signing_secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header's value: the time, then one `v1` per secret, in the given order."""
    assert signing_secrets, "an endpoint always has a secret"
    parts = [f"t={timestamp}", *(f"v1={signature(secret, timestamp, body)}" for secret in signing_secrets)]
    return ",".join(parts)
