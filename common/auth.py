"""Who may call what: API keys with scopes, kept and compared as hashes (pure: no I/O, no clock).

The rules:
- A caller sends `Authorization: Bearer <key>`. A key belongs to a named caller (a shop, a carrier, an
  operator) and carries one or more scopes: `shop` (checkout, read orders and payments, customer cancel),
  `carrier` (ship, deliver), `operator` (stock writes, refund retry, dead letters, and every read `shop`
  has), `payment-lookup` (the order service's own key: payment reads only). Each route names the scopes
  that may call it (`Access`); a few are public (liveness, readiness). Scopes say *what* a caller may do;
  which objects it may do it to is ownership (common/tenancy.py): a carrier entry names its shops.
- No key, or a key no entry knows: 401. A known key without any of the route's scopes: 403.
- Keys are stored as SHA-256 digests only (`name scopes sha256:<hex>`, one entry a line): a key is 256
  random bits, so a plain digest cannot be reversed, and the service never holds a key it could leak. The
  presented key's digest is compared with every entry in constant time (`hmac.compare_digest`, no early
  exit), so the time of an answer says nothing about how close a guess came.
- Several entries may share a caller's name: that is how a key is rotated (add the new key, move the
  callers to it, remove the old one). What a caller owns — its orders, its checkouts' Idempotency-Keys —
  is bound to its name, so it survives the rotation of its key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum


class Scope(StrEnum):
    SHOP = "shop"
    CARRIER = "carrier"
    OPERATOR = "operator"
    # The order service's own key: reads any shop's payment (an order payment accepted and order has not
    # recorded yet), and nothing else.
    PAYMENT_LOOKUP = "payment-lookup"


ALL_SCOPES = frozenset(Scope)
KEY_PREFIX = "saga_"  # lets secret scanners recognise a leaked key
DIGEST_PREFIX = "sha256:"
SERVES_PREFIX = "for="  # a carrier entry's fourth field: the shops whose parcels it moves
# A caller's name: letters, digits and `.-_`, so it can prefix what it owns without ambiguity.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
# What a bearer token may be made of (RFC 6750's b64token); anything else is no key, never an error.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


@dataclass(frozen=True)
class Access:
    """Who may call a route: any key with one of `scopes`, or anyone when `public`."""

    scopes: frozenset[Scope]
    public: bool = False

    @classmethod
    def of(cls, *scopes: Scope) -> Access:
        return cls(frozenset(scopes))


PUBLIC = Access(frozenset(), public=True)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the name of the key's owner, what the key may do and, for a carrier, the shops
    whose parcels it moves (common/tenancy.py)."""

    name: str
    scopes: frozenset[Scope]
    serves: frozenset[str] = frozenset()


# With authentication turned off (a development setting), every request acts as this caller.
ANONYMOUS = Caller("anonymous", ALL_SCOPES)


@dataclass(frozen=True)
class KeyEntry:
    """One active key: its owner, its scopes and the SHA-256 digest of the key (never the key)."""

    name: str
    scopes: frozenset[Scope]
    digest: bytes
    serves: frozenset[str] = frozenset()  # a carrier's shops

    def line(self) -> str:
        """The entry as a line of a keys file."""
        line = f"{self.name} {','.join(sorted(self.scopes))} {DIGEST_PREFIX}{self.digest.hex()}"
        return f"{line} {SERVES_PREFIX}{','.join(sorted(self.serves))}" if self.serves else line


class InvalidKeyEntry(ValueError):
    """A keys file or SAGA_API_KEYS entry that cannot be read (the message says where and why)."""


class Decision(Enum):
    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"  # 401: no key, or one no entry knows
    FORBIDDEN = "forbidden"  # 403: a known key without any of the route's scopes


def new_key() -> str:
    """A fresh API key: the prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def entry_for(name: str, scopes: Iterable[Scope], key: str, serves: Iterable[str] = ()) -> KeyEntry:
    """The entry that lets `key` in as `name` with `scopes` (and, for a carrier, the shops it serves)."""
    entry = KeyEntry(name, frozenset(scopes), digest_of(key), frozenset(serves))
    for checked in (name, *entry.serves):
        _check_name(checked)
    if not entry.scopes:
        raise InvalidKeyEntry("a key needs at least one scope")
    if entry.serves and Scope.CARRIER not in entry.scopes:
        raise InvalidKeyEntry("only a carrier key serves shops (`for=`)")
    return entry


def parse_entries(text: str, source: str = "SAGA_API_KEYS") -> list[KeyEntry]:
    """The entries of a keys file (or of SAGA_API_KEYS, where `;` also ends an entry): `name scopes
    sha256:<hex>` a line, scopes comma-separated, and for a carrier `for=shop,shop` (the shops whose
    parcels it moves; none without it); blank lines and `#` comments are skipped."""
    entries = []
    for number, raw in enumerate(text.replace(";", "\n").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            entries.append(_parse_entry(line, f"{source}, entry {number}"))
    return entries


def _parse_entry(line: str, where: str) -> KeyEntry:
    parts = line.split()
    if len(parts) not in (3, 4):
        raise InvalidKeyEntry(
            f"{where}: expected `name scopes sha256:<hex> [for=shop,...]`, got {len(parts)} fields"
        )
    name, scopes, digest = parts[:3]
    serves = _parse_serves(parts[3], where) if len(parts) == 4 else frozenset()
    _check_name(name, where)
    try:
        scope_set = frozenset(Scope(scope) for scope in scopes.split(","))
    except ValueError as exc:
        known = ", ".join(scope.value for scope in Scope)
        raise InvalidKeyEntry(f"{where}: unknown scope in {scopes!r} (known: {known})") from exc
    if not digest.startswith(DIGEST_PREFIX) or not _DIGEST.fullmatch(digest[len(DIGEST_PREFIX) :]):
        # Not echoed: someone may have pasted the key itself here.
        raise InvalidKeyEntry(f"{where}: the third field must be sha256: and 64 hex digits (`saga keys new`)")
    if serves and Scope.CARRIER not in scope_set:
        raise InvalidKeyEntry(f"{where}: only a carrier key serves shops (`for=`)")
    return KeyEntry(name, scope_set, bytes.fromhex(digest[len(DIGEST_PREFIX) :]), serves)


def _parse_serves(field: str, where: str) -> frozenset[str]:
    if not field.startswith(SERVES_PREFIX):
        raise InvalidKeyEntry(f"{where}: the fourth field must be `for=shop,...` (the carrier's shops)")
    shops = frozenset(field[len(SERVES_PREFIX) :].split(","))
    for shop in shops:
        _check_name(shop, where)
    return shops


def _check_name(name: str, where: str = "key") -> None:
    if not _NAME.fullmatch(name):
        raise InvalidKeyEntry(f"{where}: the name {name!r} must be 1-64 of letters, digits, '.', '-', '_'")


def bearer_token(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header; None when absent, of another scheme, or not a
    token at all (bytes that are not text, spaces, control characters: a fuzzer's headers are a 401)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and _TOKEN.fullmatch(token) else None


def identify(entries: Sequence[KeyEntry], key: str | None) -> Caller | None:
    """The caller `key` belongs to, or None. Every entry is compared, in constant time: how long this
    takes does not depend on which entry matched, or how much of a digest a guess got right."""
    if key is None:
        return None
    presented = digest_of(key)
    found: KeyEntry | None = None
    for entry in entries:
        if hmac.compare_digest(presented, entry.digest):
            found = entry
    return Caller(found.name, found.scopes, found.serves) if found is not None else None


def decide(access: Access, caller: Caller | None) -> Decision:
    """Whether `caller` may call a route with `access`."""
    if access.public:
        return Decision.ALLOW
    if caller is None:
        return Decision.UNAUTHENTICATED
    return Decision.ALLOW if caller.scopes & access.scopes else Decision.FORBIDDEN
