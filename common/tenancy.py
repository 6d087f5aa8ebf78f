"""Whose object is this: every order, payment and shipment belongs to the shop whose checkout made it
(pure: no I/O).

The rules:
- The **owner** of a saga is the name of the API key whose checkout started it (`Caller.name`). Order ids
  are the shop's own namespace: acme's `o-1` and globex's `o-1` are two sagas. Inside the platform — the
  databases, the events' `order_id`, the Kafka keys, dead letters — a saga is named by its **saga id**,
  `owner:order_id` (`acme:o-1`), so nothing keyed by order needs to know about owners to keep two shops
  apart, and one saga's events still share one key (one partition, in order). A caller's name has no `:`
  and neither has a shop's order id, so the pair is unambiguous.
- A caller names an object by a **reference**: an order id alone means its own namespace (its *home*:
  its own name, or, for a carrier that serves exactly one shop, that shop); `owner:order_id` names
  another namespace, which it may use only where it may **see** that owner. Who may see whom:
  operators (and order's payment lookup) every shop; a shop itself; a carrier the shops its key entry
  names (`for=acme,globex`). A reference a caller may not use is answered exactly like an id that does
  not exist — 404, by the same code path — so no status, body or timing tells a shop that another shop
  used an id.
- Orders made before owners existed have no owner in their id: they belong to `LEGACY_OWNER`
  (the migrations of each service database rename their rows to `legacy:<id>`, and an event without an
  owner is read as one of `legacy`'s). An operator sees them; a shop sees them if its key is named
  `legacy`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from common.auth import Caller, Scope

SEPARATOR = ":"
LEGACY_OWNER = "legacy"

# The namespace a reference lands in when its caller may not see the owner it names. No key can have
# this name (a name starts with a letter or digit), so no object is ever found there, and such a
# reference takes exactly the path of an id that does not exist: the same 404, the same work, the same
# time.
NOBODY = "-"

# What a caller may send where an order is named: its own order id, or owner:order_id. The owner part
# is looser than a key's name (common/auth.py) so that any owner a caller may not see is a 404, not a
# 400 that would tell the two apart.
OWNER_PATTERN = r"[A-Za-z0-9._-]{1,64}"
ORDER_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
REFERENCE_PATTERN = rf"^(?:{OWNER_PATTERN}{SEPARATOR})?{ORDER_ID_PATTERN}$"
SAGA_ID_MAX_LENGTH = 64 + len(SEPARATOR) + 64
_SAGA_ID = re.compile(rf"({OWNER_PATTERN}){SEPARATOR}({ORDER_ID_PATTERN})")

# Scopes whose holders see every shop's objects (within what their routes allow them to do).
_SEES_EVERY_OWNER = frozenset({Scope.OPERATOR, Scope.PAYMENT_LOOKUP})


def saga_id(owner: str, order_id: str) -> str:
    """The platform-wide name of `owner`'s order `order_id`."""
    return f"{owner}{SEPARATOR}{order_id}"


def split_saga_id(saga: str) -> tuple[str, str]:
    """(owner, order id) of a saga id; an id without an owner (made before owners) is `legacy`'s."""
    found = _SAGA_ID.fullmatch(saga)
    if found is None:
        return LEGACY_OWNER, saga
    return found.group(1), found.group(2)


def owner_of(saga: str) -> str:
    return split_saga_id(saga)[0]


def order_id_of(saga: str) -> str:
    """The order id as its owner knows it."""
    return split_saga_id(saga)[1]


def qualified(order_id: str) -> str:
    """`order_id` as a saga id: unchanged when it names its owner, `legacy`'s when it predates owners."""
    return saga_id(*split_saga_id(order_id))


def home(caller: Caller) -> str:
    """The namespace an order id without an owner means for `caller`: a carrier-only key that serves
    exactly one shop means that shop's; every other caller its own."""
    if Scope.SHOP not in caller.scopes and Scope.CARRIER in caller.scopes and len(caller.serves) == 1:
        [shop] = caller.serves
        return shop
    return caller.name


def may_see(caller: Caller, owner: str) -> bool:
    """Whether `caller` may see (and, as its scopes allow, act on) `owner`'s objects."""
    if caller.scopes & _SEES_EVERY_OWNER or owner == caller.name:
        return True
    return Scope.CARRIER in caller.scopes and owner in caller.serves


def resolve(caller: Caller, reference: str) -> str:
    """The saga id `caller` means by `reference` (`o-1` or `acme:o-1`); when it may not see the owner
    named, an id in `NOBODY`'s namespace, where nothing exists: the API answers it exactly as an id that
    does not exist, by the same path."""
    if SEPARATOR in reference:
        owner, order_id = split_saga_id(reference)
    else:
        owner, order_id = home(caller), reference
    return saga_id(owner if may_see(caller, owner) else NOBODY, order_id)


def visible_owners(caller: Caller, requested: str | None) -> frozenset[str] | None:
    """Which owners' objects a list shows `caller`: None for every owner (operators, unless they ask
    for one), else a set — empty when the caller asked for an owner it may not see, so the list is
    empty, as a stranger's would be."""
    if caller.scopes & _SEES_EVERY_OWNER:
        return None if requested is None else frozenset({requested})
    mine = _own_and_served(caller)
    if requested is None:
        return mine
    return frozenset({requested}) & mine


def _own_and_served(caller: Caller) -> frozenset[str]:
    served: Iterable[str] = caller.serves if Scope.CARRIER in caller.scopes else ()
    return frozenset({caller.name, *served})
