"""Two shops on one platform, each with its own key, and a carrier for each: shop B tries every
operation on shop A's objects and gets exactly what a stranger gets — what it gets for an id nobody
ever used — while A's order, money and stock stay as they were; a carrier outside A's shops gets the
same. Then who did what is on each object's record.

The keys are added to the running platform's keys file (as an operator adds a shop), and taken away
after the module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from common.auth import Scope, entry_for, new_key
from common.config import Service
from saga_tools.local_stack.stack import LocalStack
from tests.carrier_steps import CARRIER_STEPS
from tests.e2e.conftest import Platform, Shop

PAY, ORD, DLV = Service.PAYMENT, Service.ORDER, Service.DELIVERY


@dataclass(frozen=True)
class Keys:
    acme: str
    globex: str
    acme_carrier: str  # serves acme
    globex_carrier: str  # serves globex


@pytest.fixture(scope="module")
def keys(local_stack: LocalStack, platform: Platform) -> Iterator[Keys]:
    assert local_stack.api_keys is not None
    path = local_stack.api_keys.entries_file
    before = path.read_text()
    keys = Keys(new_key(), new_key(), new_key(), new_key())
    entries = [
        entry_for("acme", [Scope.SHOP], keys.acme),
        entry_for("globex", [Scope.SHOP], keys.globex),
        entry_for("acme-post", [Scope.CARRIER], keys.acme_carrier, ["acme"]),
        entry_for("globex-post", [Scope.CARRIER], keys.globex_carrier, ["globex"]),
    ]
    path.write_text(before + "".join(entry.line() + "\n" for entry in entries))
    # Each service reads the file again on its own (at most once a second, when asked): wait until every
    # one knows every new key, or a test's first call to a service may still be refused.
    probes = [(ORD, "/orders?limit=1"), (PAY, "/payments/o-none"), (DLV, "/shipments/o-none")]
    _until(
        lambda: all(
            _get(platform, service, path, key).status_code != 401
            for key in (keys.acme, keys.globex, keys.acme_carrier, keys.globex_carrier)
            for service, path in probes
        )
    )
    yield keys
    path.write_text(before)
    time.sleep(1.5)  # the services read it again within a second


@pytest.fixture(scope="module")
def operator(local_stack: LocalStack) -> str:
    """The platform's operator key (every shop's orders)."""
    assert local_stack.api_keys is not None
    return local_stack.api_keys.demo_keys()[Scope.OPERATOR]


def _until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _get(platform: Platform, service: Service, path: str, key: str) -> httpx.Response:
    return httpx.get(platform.url(service) + path, headers=_headers(key), timeout=15)


def _post(
    platform: Platform,
    service: Service,
    path: str,
    key: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    sent = {**_headers(key), **(headers or {})}
    return httpx.post(platform.url(service) + path, headers=sent, timeout=15, **kwargs)


def _checkout(platform: Platform, shop: Shop, key: str, order_id: str, sku: str, idempotency_key: str) -> Any:
    body = {**shop.checkout_body([(sku, 2)]), "order_id": order_id}
    answer = _post(platform, PAY, "/checkout", key, json=body, headers={"Idempotency-Key": idempotency_key})
    return answer


def _wait_status(platform: Platform, key: str, order_id: str, *statuses: str) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal last
        answer = _get(platform, ORD, f"/orders/{order_id}", key)
        last = answer.json() if answer.status_code == 200 else {}
        return last.get("status") in statuses

    _until(reached, timeout=30)
    return last


def _as_stranger(answer: httpx.Response, never_used: httpx.Response, reference: str, fresh: str) -> None:
    """`answer` (to a reference of another shop's object) is what `never_used` (to an id nobody used)
    is, but for the id itself in the message."""
    assert answer.status_code == never_used.status_code == 404, (answer.text, never_used.text)
    local = reference.rsplit(":", 1)[-1]
    assert answer.json() == {
        key: value.replace(fresh, local) if isinstance(value, str) else value
        for key, value in never_used.json().items()
    }


# The reads and acts a shop or a carrier may try on an order, by service, method and path.
SHOP_TRIES = [
    (ORD, "GET", "/orders/{}"),
    (ORD, "POST", "/orders/{}/cancel"),
    (PAY, "GET", "/payments/{}"),
    (DLV, "GET", "/shipments/{}"),
]
CARRIER_TRIES = [
    (DLV, "GET", "/shipments/{}"),
    *[(DLV, "POST", f"/shipments/{{}}/{step}") for step in CARRIER_STEPS],
]


def _try(platform: Platform, key: str, service: Service, method: str, path: str) -> httpx.Response:
    return httpx.request(method, platform.url(service) + path, headers=_headers(key), timeout=15)


def test_another_shop_and_a_carrier_outside_the_shop_get_what_a_stranger_gets_and_change_nothing(
    platform: Platform, shop: Shop, keys: Keys
) -> None:
    sku = shop.stock(10)
    order_id, cart = f"o-{uuid.uuid4().hex[:10]}", f"cart-{uuid.uuid4().hex[:8]}"
    placed = _checkout(platform, shop, keys.acme, order_id, sku, cart)
    assert placed.status_code == 202, placed.text
    assert placed.json()["order_id"] == order_id
    _wait_status(platform, keys.acme, order_id, "SCHEDULED")
    acme_before = _get(platform, ORD, f"/orders/{order_id}", keys.acme).json()
    assert acme_before["owner"] == "acme"

    # globex, and globex's carrier, try every operation on acme's order: by acme's id (their own
    # namespace) and by acme's name for it (acme:id); each answer is the one for an id nobody used.
    fresh = f"o-{uuid.uuid4().hex[:10]}"
    for key, tries in ((keys.globex, SHOP_TRIES), (keys.globex_carrier, CARRIER_TRIES)):
        for service, method, path in tries:
            never_used = _try(platform, key, service, method, path.format(fresh))
            for reference in (order_id, f"acme:{order_id}"):
                answer = _try(platform, key, service, method, path.format(reference))
                _as_stranger(answer, never_used, reference, fresh)

    # globex's lists hold none of acme's orders, also when it asks for acme's
    for query in ("", "?owner=acme", "?status=SCHEDULED&limit=500"):
        listed = _get(platform, ORD, f"/orders{query}", keys.globex).json()["items"]
        assert all(item["owner"] == "globex" for item in listed), listed
    assert any(
        item["order_id"] == order_id
        for item in _get(platform, ORD, "/orders?limit=500", keys.acme).json()["items"]
    )

    # acme's order id and acme's Idempotency-Key, sent by globex, start globex's own checkout
    same_id = _checkout(platform, shop, keys.globex, order_id, sku, f"other-{cart}")
    same_key = _checkout(platform, shop, keys.globex, f"g-{order_id}", sku, cart)
    assert same_id.status_code == same_key.status_code == 202, (same_id.text, same_key.text)
    assert same_id.json()["order_id"] == order_id  # globex's own o-…, not acme's
    assert same_id.json()["payment_id"] != placed.json()["payment_id"]
    assert same_key.json()["payment_id"] not in (placed.json()["payment_id"], same_id.json()["payment_id"])
    globex_order = _wait_status(platform, keys.globex, order_id, "SCHEDULED")
    assert globex_order["owner"] == "globex" and globex_order["payment_id"] == same_id.json()["payment_id"]

    # acme's order, payment and stock are as they were; acme's carrier ships and delivers it
    after = _get(platform, ORD, f"/orders/{order_id}", keys.acme).json()
    assert (after["status"], after["cancellation"], after["timeline"]) == (
        acme_before["status"],
        None,
        acme_before["timeline"],
    )
    payment = _get(platform, PAY, f"/payments/{order_id}", keys.acme).json()
    assert (payment["status"], payment["refund"], payment["owner"]) == ("CAPTURED", None, "acme")
    for step in CARRIER_STEPS:
        moved = _post(platform, DLV, f"/shipments/{order_id}/{step}", keys.acme_carrier)
        assert moved.status_code == 200, moved.text
    completed = _wait_status(platform, keys.acme, order_id, "COMPLETED")
    assert completed["payment_id"] == placed.json()["payment_id"]
    shipment = _get(platform, DLV, f"/shipments/{order_id}", keys.acme).json()
    assert (shipment["shipped_by"], shipment["delivered_by"], shipment["owner"]) == (
        "acme-post",
        "acme-post",
        "acme",
    )
    # acme's 2 shipped; globex's two orders hold their own 2 each
    assert {k: shop.inventory(sku)[k] for k in ("on_hand", "reserved", "shipped")} == {
        "on_hand": 4,
        "reserved": 4,
        "shipped": 2,
    }

    # globex's order with the same id is untouched by acme's carrier's steps, and globex cancels its own
    assert _get(platform, DLV, f"/shipments/{order_id}", keys.globex).json()["status"] == "SCHEDULED"
    cancelled = _post(platform, ORD, f"/orders/{order_id}/cancel", keys.globex)
    assert cancelled.status_code == 202 and cancelled.json()["owner"] == "globex", cancelled.text
    _wait_status(platform, keys.globex, order_id, "REFUNDED")
    requested = [
        e
        for e in _get(platform, ORD, f"/orders/{order_id}", keys.globex).json()["timeline"]
        if e["kind"] == "requested"
    ]
    assert requested and "(by globex)" in requested[0]["detail"]
    assert _get(platform, ORD, f"/orders/{order_id}", keys.acme).json()["status"] == "COMPLETED"
    assert _get(platform, PAY, f"/payments/{order_id}", keys.acme).json()["refund"] is None
    for step in CARRIER_STEPS:
        assert _post(platform, DLV, f"/shipments/g-{order_id}/{step}", keys.globex_carrier).status_code == 200


def test_an_operator_sees_every_shop_and_names_an_order_by_its_shop(
    platform: Platform, shop: Shop, keys: Keys, operator: str
) -> None:
    sku = shop.stock(4)
    order_id = f"o-{uuid.uuid4().hex[:10]}"
    for key in (keys.acme, keys.globex):
        assert _checkout(platform, shop, key, order_id, sku, uuid.uuid4().hex).status_code == 202
    for key in (keys.acme, keys.globex):
        _wait_status(platform, key, order_id, "SCHEDULED")

    acme = _get(platform, ORD, f"/orders/acme:{order_id}", operator).json()
    globex = _get(platform, ORD, f"/orders/globex:{order_id}", operator).json()
    assert (acme["owner"], globex["owner"]) == ("acme", "globex")
    assert acme["payment_id"] != globex["payment_id"]
    assert _get(platform, ORD, f"/orders/{order_id}", operator).status_code == 404  # whose?
    listed = _get(platform, ORD, "/orders?status=SCHEDULED&limit=500", operator).json()["items"]
    assert {"acme", "globex"} <= {item["owner"] for item in listed if item["order_id"] == order_id}
    only_acme = _get(platform, ORD, "/orders?owner=acme&limit=500", operator).json()["items"]
    assert {item["owner"] for item in only_acme} == {"acme"}
    for owner, key in (("acme", keys.acme_carrier), ("globex", keys.globex_carrier)):
        for step in CARRIER_STEPS:
            assert _post(platform, DLV, f"/shipments/{owner}:{order_id}/{step}", key).status_code == 200


def test_a_shop_pages_through_its_own_orders_after_its_last_one_and_never_after_anothers(
    platform: Platform, shop: Shop, keys: Keys
) -> None:
    sku = shop.stock(6)
    placed = [f"p-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    for order_id in placed:
        assert _checkout(platform, shop, keys.acme, order_id, sku, uuid.uuid4().hex).status_code == 202
    for order_id in placed:
        _wait_status(platform, keys.acme, order_id, "SCHEDULED")

    seen: list[str] = []
    after: str | None = None
    while True:
        query = "/orders?status=SCHEDULED&limit=1" + (f"&after={after}" if after else "")
        page = _get(platform, ORD, query, keys.acme).json()
        seen += [item["order_id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
        assert after.startswith("acme:")
    assert set(placed) <= set(seen) and len(seen) == len(set(seen))  # every one, once, newest first
    assert seen.index(placed[2]) < seen.index(placed[1]) < seen.index(placed[0])

    strangers = _get(platform, ORD, f"/orders?after=acme:{placed[0]}", keys.globex)
    never_used = _get(platform, ORD, f"/orders?after=globex:{placed[0]}", keys.globex)
    assert strangers.status_code == never_used.status_code == 404
    assert strangers.json() == never_used.json()
    for order_id in placed:
        for step in CARRIER_STEPS:
            assert _post(platform, DLV, f"/shipments/{order_id}/{step}", keys.acme_carrier).status_code == 200


def test_a_search_by_customer_finds_a_shops_own_orders_and_an_operator_finds_every_shops(
    platform: Platform, shop: Shop, keys: Keys, operator: str
) -> None:
    sku = shop.stock(4)
    customer = f"cust-{uuid.uuid4().hex[:8]}"  # the same customer id at both shops: two people
    placed = {}
    for owner, key in (("acme", keys.acme), ("globex", keys.globex)):
        body = {**shop.checkout_body([(sku, 1)]), "customer_id": customer}
        answer = _post(
            platform, PAY, "/checkout", key, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
        )
        assert answer.status_code == 202, answer.text
        placed[owner] = answer.json()["order_id"]
        _wait_status(platform, key, placed[owner], "SCHEDULED", "PLACED")

    def found(key: str, query: str = "") -> set[tuple[str, str]]:
        listing = _get(platform, ORD, f"/orders?customer_id={customer}{query}", key).json()
        assert listing["total"] == len(listing["items"])
        return {(item["owner"], item["order_id"]) for item in listing["items"]}

    assert found(keys.acme) == {("acme", placed["acme"])}
    assert found(keys.globex) == {("globex", placed["globex"])}
    assert found(operator) == {("acme", placed["acme"]), ("globex", placed["globex"])}
    assert found(operator, "&owner=globex") == {("globex", placed["globex"])}
    assert found(keys.acme, "&owner=globex") == set()  # another shop's: empty, as a stranger's list
    too_long = _get(platform, ORD, "/orders?customer_id=" + "c" * 65, keys.acme)
    assert too_long.status_code == 400 and "customer_id" in too_long.text
