"""The test suites' own API key: every scope (the suites play shop, carrier and operator), added to the
demo keys the local stack made. One key per test session."""

from __future__ import annotations

import functools

from common.infra.api_keys import all_scopes_key
from common.ops.apis import bearer


@functools.cache
def _suite_key() -> tuple[str, dict[str, str]]:
    return all_scopes_key("test-suite")


def suite_key() -> str:
    return _suite_key()[0]


def suite_key_environment() -> dict[str, str]:
    """What a service process needs to accept the suite's key."""
    return dict(_suite_key()[1])


def suite_headers() -> dict[str, str]:
    return bearer(suite_key())
