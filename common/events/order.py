"""Events on the `order` topic (written only by the order service)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from common.events.values import Address, Frozen, Money, OrderLine


class OrderPlaced(Frozen):
    """The order is paid and waits for delivery to reserve its lines."""

    payment_id: UUID
    customer_id: str
    amount: Money
    lines: tuple[OrderLine, ...]
    shipping_address: Address


class OrderCancelled(Frozen):
    """The order will not be fulfilled: delivery releases stock, payment refunds."""

    payment_id: UUID
    amount: Money
    reason: Literal["out_of_stock", "customer", "timeout"]


class OrderCompleted(Frozen):
    """The goods were delivered; the saga is over."""

    payment_id: UUID
    amount: Money
