"""The console's actions (POST, behind the guard's session and CSRF checks): retry or discard a dead
letter, retry a failed refund, set a SKU's stock.

Each calls the service's own operator endpoint, records what came of it as a notice, and answers 303 to
the page it came from (`next`, a local path only): a plain form reloads that page, and htmx fetches it
and swaps in just the part the form names, so the operator stays on the same document.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.config import Service
from common.service_apis import NotFound, Refused, ServiceApis
from console.backend import with_key
from console.guard import see_other
from console.keys import SETTINGS, session_of


def local_path(candidate: Any, fallback: str) -> str:
    """`candidate` if it is a path on this console, else `fallback`: a form's `next` can never send the
    operator to another site (`//host`, `https://…`, a backslash trick)."""
    if (
        isinstance(candidate, str)
        and candidate.startswith("/")
        and not candidate.startswith("//")
        and "\\" not in candidate
        and all(ord(char) > 31 for char in candidate)
    ):
        return candidate
    return fallback


async def _act(request: web.Request, fallback: str, what: str, work: Any) -> web.StreamResponse:
    """Run `work`, note its outcome (or why the service refused it), and go back to the page."""
    form = await request.post()
    session = session_of(request)
    try:
        result = await with_key(request.app[SETTINGS], session.api_key, work)
        session.notices.append(f"{what}: {result}")
    except NotFound as exc:
        session.notices.append(f"{what}: not found ({exc})")
    except Refused as exc:
        if exc.status == 401:
            raise
        session.notices.append(f"{what}: refused ({exc})")
    return see_other(local_path(form.get("next"), fallback))


def _letter(request: web.Request) -> tuple[Service, int]:
    try:
        return Service(request.match_info["service"]), int(request.match_info["letter_id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such dead letter") from None


async def retry_letter(request: web.Request) -> web.StreamResponse:
    service, letter_id = _letter(request)

    def retry(apis: ServiceApis) -> str:
        results = apis.post(service, f"/dead-letters/{letter_id}/retry")["results"]
        return ", ".join(f"#{result['id']} {result['outcome']}" for result in results)

    return await _act(request, "/dead-letters", f"retry {service.value} #{letter_id}", retry)


async def discard_letter(request: web.Request) -> web.StreamResponse:
    service, letter_id = _letter(request)

    def discard(apis: ServiceApis) -> str:
        return str(apis.post(service, f"/dead-letters/{letter_id}/discard")["status"])

    return await _act(request, "/dead-letters", f"discard {service.value} #{letter_id}", discard)


async def retry_refund(request: web.Request) -> web.StreamResponse:
    order_id = request.match_info["order_id"]

    def retry(apis: ServiceApis) -> str:
        return f"refund {apis.post(Service.PAYMENT, f'/payments/{order_id}/refund/retry')['status']}"

    return await _act(request, "/refunds", f"retry the refund of {order_id}", retry)


async def set_stock(request: web.Request) -> web.StreamResponse:
    """Set a listed SKU's units on hand (`/stock/{sku}`), or a new SKU's (`/stock`, the SKU in the form)."""
    form = await request.post()
    named = form.get("sku")
    sku = request.match_info.get("sku") or (named.strip() if isinstance(named, str) else "")
    if not sku:
        session_of(request).notices.append("stock: name a SKU")
        return see_other("/stock")
    raw = form.get("on_hand")
    if not isinstance(raw, str) or not raw.strip().isdigit():
        session_of(request).notices.append(f"stock of {sku}: on hand must be a whole number of units")
        return see_other("/stock")
    on_hand = int(raw)

    def put(apis: ServiceApis) -> str:
        return f"{apis.put(Service.DELIVERY, f'/inventory/{sku}', {'on_hand': on_hand})['on_hand']} on hand"

    return await _act(request, "/stock", f"stock of {sku}", put)


def register(router: web.UrlDispatcher) -> None:
    router.add_post("/dead-letters/{service}/{letter_id}/retry", retry_letter)
    router.add_post("/dead-letters/{service}/{letter_id}/discard", discard_letter)
    router.add_post("/refunds/{order_id}/retry", retry_refund)
    router.add_post("/stock", set_stock)
    router.add_post("/stock/{sku}", set_stock)
