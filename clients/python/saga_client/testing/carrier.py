"""`saga_carrier`: the carrier's steps, whether or not the platform's auto-progress is faster.

A platform started by the plugin ships nothing on its own; one started with `saga run` makes every step
(ships, delivers) after two seconds. `through`, `ship` and `deliver` take the parcel to that step's
status either way, making the steps before it in order (`models.CARRIER_STEPS`): a step the platform
already took is not an error.
"""

from __future__ import annotations

import time

from saga_client.client import SagaClient
from saga_client.errors import NotFound, WrongState
from saga_client.models import CARRIER_STEPS, CarrierStep, Shipment, ShipmentStatus

# The statuses a parcel goes through, in order: each step leaves it in the next one.
_ORDER = [ShipmentStatus.SCHEDULED, *(step.reached for step in CARRIER_STEPS)]
_STEP = {step.name: step for step in CARRIER_STEPS}


class Carrier:
    def __init__(self, client: SagaClient) -> None:
        self._client = client

    def through(self, order_id: str, step: str, *, timeout: float = 30.0) -> Shipment:
        """The parcel taken through the carrier's `step` (by its name), once delivery scheduled it."""
        return self._walk(order_id, _STEP[step], timeout)

    def ship(self, order_id: str, *, timeout: float = 30.0) -> Shipment:
        """The parcel picked up (once delivery scheduled it)."""
        return self.through(order_id, "ship", timeout=timeout)

    def deliver(self, order_id: str, *, timeout: float = 30.0) -> Shipment:
        """The parcel picked up and delivered (once delivery scheduled it)."""
        return self.through(order_id, "deliver", timeout=timeout)

    def _walk(self, order_id: str, last_step: CarrierStep, timeout: float) -> Shipment:
        target = last_step.reached
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
            step = CARRIER_STEPS[_ORDER.index(last.status)]  # the one that leaves this status
            try:
                last = self._client.carrier_step(order_id, step.name)
            except WrongState:  # the platform's auto-progress (or a cancel) took it first: look again
                continue
        raise AssertionError(f"the parcel of {order_id} is not {target} after {timeout:g}s; last: {last}")
