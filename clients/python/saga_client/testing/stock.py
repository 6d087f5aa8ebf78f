"""`saga_stock`: SKUs unique to the test, so tests never share stock and need no restart between them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from saga_client.client import SagaClient


class StockFactory:
    """`saga_stock(on_hand)` creates a new SKU with that many units on hand and returns its name
    (`<prefix>-<test name>-<random>`, at most 64 characters of `[A-Za-z0-9._-]`)."""

    def __init__(self, client: SagaClient, test_name: str, record: Callable[[str], None]) -> None:
        self._client = client
        self._label = re.sub(r"[^A-Za-z0-9]+", "-", test_name.removeprefix("test_")).strip("-")[:30]
        self._record = record

    def __call__(self, on_hand: int = 10, *, prefix: str = "SKU") -> str:
        sku = f"{prefix}-{self._label}-{uuid.uuid4().hex[:8]}"[:64]
        self._client.set_stock(sku, on_hand)
        self._record(sku)
        return sku
