"""`saga_carrier`: the carrier's steps, whether or not the platform's auto-progress is faster.

A platform started by the plugin ships nothing on its own; one started with `saga run` ships and
delivers after two seconds. `deliver` and `ship` take the parcel to that state either way: a step the
platform already took is not an error.
"""

from __future__ import annotations

import time

from saga_client.client import SagaClient
from saga_client.errors import NotFound, WrongState
from saga_client.models import Shipment, ShipmentStatus

_ORDER = [ShipmentStatus.SCHEDULED, ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED]


class Carrier:
    def __init__(self, client: SagaClient) -> None:
        self._client = client

    def ship(self, order_id: str, *, timeout: float = 30.0) -> Shipment:
        """The parcel picked up (once delivery scheduled it)."""
        return self._walk(order_id, ShipmentStatus.SHIPPED, timeout)

    def deliver(self, order_id: str, *, timeout: float = 30.0) -> Shipment:
        """The parcel picked up and delivered (once delivery scheduled it)."""
        return self._walk(order_id, ShipmentStatus.DELIVERED, timeout)

    def _walk(self, order_id: str, target: ShipmentStatus, timeout: float) -> Shipment:
        deadline = time.monotonic() + timeout
        last: Shipment | None = None
        while time.monotonic() < deadline:
            try:
                last = self._client.shipment(order_id)
            except NotFound:  # delivery has not consumed the order yet
                time.sleep(0.05)
                continue
            if last.status not in _ORDER:
                raise AssertionError(f"the parcel of {order_id} will never be {target}: it is {last.status}")
            if _ORDER.index(last.status) >= _ORDER.index(target):
                return last
            step = self._client.ship if last.status is ShipmentStatus.SCHEDULED else self._client.deliver
            try:
                last = step(order_id)
            except WrongState:  # the platform's auto-progress (or a cancel) took it first: look again
                continue
        raise AssertionError(f"the parcel of {order_id} is not {target} after {timeout:g}s; last: {last}")
