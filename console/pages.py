"""The console's pages (GET): overview, search, an order's story, dead letters, failed refunds, stock.

Each reads the services' APIs with the signed-in operator's key (an operator sees every shop). A page
that polls (overview, story) has a fragment URL of its own that htmx fetches every few seconds and swaps
in place, so the page updates without a reload.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from common.config import Service
from common.order_story import order_story
from common.service_apis import NotFound, Refused, ServiceApis
from common.tenancy import SEPARATOR, saga_id
from console.backend import with_key
from console.guard import see_other
from console.keys import RATES, SETTINGS, SPANS, session_of
from console.overview import STATUSES, overview, with_throughput
from console.rendering import render
from console.story_view import mark_heads, story_view, trace_rows


async def _read(request: web.Request, work: Any) -> Any:
    return await with_key(request.app[SETTINGS], session_of(request).api_key, work)


def _service(request: web.Request) -> Service:
    try:
        return Service(request.match_info["service"])
    except ValueError:
        raise web.HTTPNotFound(text="no such service") from None


async def _overview(request: web.Request) -> dict[str, Any]:
    return with_throughput(await _read(request, overview), request.app[RATES])


async def overview_page(request: web.Request) -> web.StreamResponse:
    return render(request, "overview.html", live=await _overview(request), statuses=STATUSES)


async def overview_live(request: web.Request) -> web.StreamResponse:
    return render(request, "_overview_live.html", live=await _overview(request))


async def search(request: web.Request) -> web.StreamResponse:
    """One order by `shop:order_id` (straight to its story), or a listing by status, shop, customer or
    idleness (any of them together), as the order service lists them."""
    query = request.query
    wanted = query.get("q", "").strip()
    if wanted:
        return see_other(f"/orders/{quote(wanted, safe=':')}")
    status = query.get("status") or None
    shop = query.get("shop", "").strip() or None
    customer = query.get("customer", "").strip() or None
    stuck = query.get("stuck", "").strip()
    params: dict[str, Any] = {"status": status, "owner": shop, "customer_id": customer, "limit": 100}
    if stuck.isdigit():
        params["stuck_for"] = int(stuck) * 60
    listing, refused = None, None
    if status or shop or customer or stuck:
        try:
            listing = await _read(request, lambda apis: apis.get(Service.ORDER, "/orders", **params))
        except Refused as exc:
            if exc.status == 401:
                raise  # the key was revoked: the guard ends the session
            refused = f"The order service refused this search: {exc}"
    return render(
        request,
        "search.html",
        listing=listing,
        refused=refused,
        statuses=STATUSES,
        status=status or "",
        shop=shop or "",
        customer=customer or "",
        stuck=stuck,
    )


async def _story(request: web.Request) -> dict[str, Any]:
    order_id = request.match_info["order_id"]
    try:
        story = await _read(request, lambda apis: order_story(apis, order_id))
    except NotFound as exc:
        hint = "" if SEPARATOR in order_id else " Name an order as shop:order_id."
        raise web.HTTPNotFound(text=f"{exc}.{hint}") from None
    view = story_view(story)
    spans = request.app.get(SPANS)
    if spans is not None:
        view["trace"] = trace_rows(spans.saga_trace(order_id))
    return view


async def order_page(request: web.Request) -> web.StreamResponse:
    try:
        story = await _story(request)
    except web.HTTPNotFound as missing:
        return render(request, "missing.html", http_status=404, message=missing.text)
    return render(request, "order.html", story=story)


async def order_fragment(request: web.Request) -> web.StreamResponse:
    return render(request, "_story.html", story=await _story(request))


async def dead_letters(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status", "parked")

    def read(apis: ServiceApis) -> list[dict[str, Any]]:
        return mark_heads(
            [
                {**letter, "service": service.value}
                for service in Service
                for letter in apis.get(service, "/dead-letters", status=status, limit=500)["items"]
            ]
        )

    return render(request, "dead_letters.html", letters=await _read(request, read), status=status)


async def dead_letter(request: web.Request) -> web.StreamResponse:
    service, letter_id = _service(request), request.match_info["letter_id"]
    try:
        letter = await _read(request, lambda apis: apis.get(service, f"/dead-letters/{letter_id}"))
    except NotFound:
        return render(
            request,
            "missing.html",
            http_status=404,
            message=f"{service.value} has no dead letter {letter_id}",
        )
    return render(request, "dead_letter.html", letter={**letter, "service": service.value})


async def refunds(request: web.Request) -> web.StreamResponse:
    """Orders whose refund failed for good (every shop's), each with its payment's refund."""

    def read(apis: ServiceApis) -> list[dict[str, Any]]:
        orders = apis.get(Service.ORDER, "/orders", status="REFUND_FAILED", limit=100)["items"]
        failed = []
        for order in orders:
            name = saga_id(order["owner"], order["order_id"])
            payment = apis.get_or_none(Service.PAYMENT, f"/payments/{name}")
            failed.append({"name": name, "order": order, "refund": (payment or {}).get("refund")})
        return failed

    return render(request, "refunds.html", failed=await _read(request, read))


async def stock(request: web.Request) -> web.StreamResponse:
    after = request.query.get("after") or None
    page = await _read(request, lambda apis: apis.get(Service.DELIVERY, "/inventory", after=after, limit=200))
    return render(request, "stock.html", items=page["items"], next_after=page["next_after"])


def register(router: web.UrlDispatcher) -> None:
    router.add_get("/", overview_page)
    router.add_get("/overview/live", overview_live)
    router.add_get("/search", search)
    router.add_get("/orders/{order_id}", order_page)
    router.add_get("/orders/{order_id}/story", order_fragment)
    router.add_get("/dead-letters", dead_letters)
    router.add_get("/dead-letters/{service}/{letter_id:\\d+}", dead_letter)
    router.add_get("/refunds", refunds)
    router.add_get("/stock", stock)
