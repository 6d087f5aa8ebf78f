"""The test suites' own API key: every scope (the suites play shop, carrier and operator), added to the
demo keys the local stack made. One key per test session."""

from __future__ import annotations

import functools

from common.auth import Scope, entry_for, new_key
from common.service_apis import bearer
from saga_tools.local_stack.local_api_keys import all_scopes_key

# The name of the suite's key: the shop that owns the orders the suites place.
SUITE_SHOP = "test-suite"


# Two more shops, with a `shop` key each: the fuzzer plays each of them.
SHOPS = ("fuzz-shop-a", "fuzz-shop-b")


@functools.cache
def _suite_key() -> tuple[str, dict[str, str]]:
    return all_scopes_key(SUITE_SHOP)


@functools.cache
def shop_keys() -> dict[str, str]:
    """A `shop` key for each of SHOPS, by name."""
    return {name: new_key() for name in SHOPS}


def suite_key() -> str:
    return _suite_key()[0]


def suite_key_environment() -> dict[str, str]:
    """What a service process needs to accept the suite's key and the shops' keys."""
    entries = [entry_for(name, [Scope.SHOP], key).line() for name, key in shop_keys().items()]
    suite = _suite_key()[1]["SAGA_API_KEYS"]
    return {"SAGA_API_KEYS": "; ".join([suite, *entries])}


def suite_headers() -> dict[str, str]:
    return bearer(suite_key())
