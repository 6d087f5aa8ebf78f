"""The services' APIs as the console calls them: with the signed-in operator's key, off the event loop.

The console reuses the operator CLI's client (common/service_apis.py) and its readers (common/order_story.py),
which are synchronous: each call runs in a worker thread so one slow service never stalls other pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from common.config import Service, Settings
from common.service_apis import NotFound, Refused, ServiceApis, ServiceUnavailable

T = TypeVar("T")

__all__ = ["NotFound", "Refused", "ServiceUnavailable", "check_operator_key", "with_key"]


async def with_key(settings: Settings, api_key: str, work: Callable[[ServiceApis], T]) -> T:
    """Run `work` against the services with `api_key`, in a thread; the client is closed afterwards."""

    def run() -> T:
        with ServiceApis(settings, timeout=5.0, api_key=api_key) as apis:
            return work(apis)

    return await asyncio.to_thread(run)


async def check_operator_key(settings: Settings, api_key: str) -> str | None:
    """Why `api_key` cannot sign in, or None when it can: the order service must accept it for a call
    only the `operator` scope may make (listing dead letters), so a shop's or a carrier's key is refused
    as firmly as a made-up one."""
    if not api_key.strip():
        return "Enter the operator API key."
    try:
        await with_key(
            settings, api_key.strip(), lambda apis: apis.get(Service.ORDER, "/dead-letters", limit=1)
        )
    except Refused as exc:
        if exc.status == 401:
            return "The services do not know this key. Check it and try again."
        if exc.status == 403:
            return "This key has no operator scope: the console needs an operator key."
        return f"The order service refused the check ({exc.status})."
    except ServiceUnavailable:
        return (
            f"Could not check the key: the order service at {settings.base_url(Service.ORDER)} does not"
            " answer. Try again when it is up."
        )
    return None
