"""Every HTTP operation the client uses, in one table: service, method, path, answer status and model.

The platform's CI checks this table against the services' OpenAPI documents (each operation exists,
answers that status, with a schema of the model's shape), so the client cannot drift from the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from saga_client import models
from saga_client.config import ClientConfig, Service

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation(Generic[M]):
    """One operation. `service` None: every service serves it (health, dead letters). `idempotent`:
    sending it twice has the effect of sending it once, so it may be retried after a lost answer.
    `also_answers`: non-2xx statuses whose body is the answer model too (readiness' 503)."""

    service: Service | None
    method: str
    path: str
    status: int
    answer: type[M]
    idempotent: bool = True
    also_answers: frozenset[int] = field(default_factory=frozenset)

    def url(self, config: ClientConfig, service: Service | None = None, **path: str | int) -> str:
        """The operation's URL on `service` (its own one unless it is shared), path parameters quoted."""
        target = self.service or service
        if target is None:
            raise ValueError(f"{self.method} {self.path} is served by every service: say which")
        filled = self.path.format(**{name: quote(str(value), safe="") for name, value in path.items()})
        return f"{config.url(target)}{filled}"


PAY, ORD, DLV = Service.PAYMENT, Service.ORDER, Service.DELIVERY

# The checkout is idempotent by its Idempotency-Key: every retry carries the same key and body.
CHECKOUT = Operation(PAY, "POST", "/checkout", 202, models.CheckoutResult)
PAYMENT = Operation(PAY, "GET", "/payments/{order_id}", 200, models.Payment)
RETRY_REFUND = Operation(
    PAY, "POST", "/payments/{order_id}/refund/retry", 202, models.RefundQueued, idempotent=False
)
ORDER = Operation(ORD, "GET", "/orders/{order_id}", 200, models.OrderDetail)
ORDERS = Operation(ORD, "GET", "/orders", 200, models.OrderPage)
# A second cancel of the same order is answered 202 `ignored`: safe to retry.
CANCEL = Operation(ORD, "POST", "/orders/{order_id}/cancel", 202, models.CancelResult)
SET_STOCK = Operation(DLV, "PUT", "/inventory/{sku}", 200, models.Stock)
STOCK = Operation(DLV, "GET", "/inventory/{sku}", 200, models.StockRow)
INVENTORY = Operation(DLV, "GET", "/inventory", 200, models.StockList)
LOAD_STOCK = Operation(DLV, "POST", "/inventory", 200, models.StockSet)
SHIPMENT = Operation(DLV, "GET", "/shipments/{order_id}", 200, models.Shipment)
SHIP = Operation(DLV, "POST", "/shipments/{order_id}/ship", 200, models.Shipment, idempotent=False)
DELIVER = Operation(DLV, "POST", "/shipments/{order_id}/deliver", 200, models.Shipment, idempotent=False)
DEAD_LETTERS = Operation(None, "GET", "/dead-letters", 200, models.DeadLetterPage)
DEAD_LETTER = Operation(None, "GET", "/dead-letters/{dead_letter_id}", 200, models.DeadLetter)
RETRY_DEAD_LETTER = Operation(
    None, "POST", "/dead-letters/{dead_letter_id}/retry", 200, models.RetryResults, idempotent=False
)
DISCARD_DEAD_LETTER = Operation(
    None, "POST", "/dead-letters/{dead_letter_id}/discard", 200, models.Discarded, idempotent=False
)
HEALTH = Operation(None, "GET", "/healthz", 200, models.Health)
READINESS = Operation(None, "GET", "/readyz", 200, models.Readiness, also_answers=frozenset({503}))

ALL: tuple[Operation[Any], ...] = (
    CHECKOUT,
    PAYMENT,
    RETRY_REFUND,
    ORDER,
    ORDERS,
    CANCEL,
    SET_STOCK,
    STOCK,
    INVENTORY,
    LOAD_STOCK,
    SHIPMENT,
    SHIP,
    DELIVER,
    DEAD_LETTERS,
    DEAD_LETTER,
    RETRY_DEAD_LETTER,
    DISCARD_DEAD_LETTER,
    HEALTH,
    READINESS,
)
