"""A shop's test configuration: nothing but the client and its pytest plugin (`saga-client[pytest]`).

The plugin provides the fixtures (`saga`, `saga_stock`, `saga_events`, `saga_carrier`, `saga_faults`,
`assert_saga_consistent`); this file only says how the platform should run and how this shop checks out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from saga_client import SagaClient
from saga_client.models import CheckoutResult
from saga_client.testing import PlatformSettings

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
PRICE = 1999  # minor units: 19.99 EUR

Checkout = Callable[..., CheckoutResult]


@pytest.fixture(scope="session")
def saga_platform_settings() -> PlatformSettings:
    """How the platform the plugin starts runs (a platform already running keeps its own settings):
    parcels move only when a test says so, and a refused refund gives up after two tries."""
    return PlatformSettings(auto_progress_seconds=None, refund_max_attempts=2)


@pytest.fixture()
def checkout(saga: SagaClient) -> Checkout:
    """`checkout((sku, quantity), …, card="tok_visa")`: this shop's checkout of a cart at 19.99 a unit."""

    def place(
        *items: tuple[str, int], card: str = "tok_visa", client: SagaClient | None = None, **options: Any
    ):
        return (client or saga).checkout(
            customer_id="shop-customer-1",
            currency="EUR",
            payment_method=card,
            lines=[(sku, quantity, PRICE) for sku, quantity in items],
            shipping_address=ADDRESS,
            **options,
        )

    return place
