"""Every HTTP operation the client uses, in one table: service, method, path, answer status and model,
and the role whose API key it sends.

The role is the one a real caller plays: the shop checks out, cancels, reads (orders, payments, stock,
shipments) and manages its webhooks; the carrier ships and delivers; the operator counts stock, retries
refunds, handles dead letters and manages another shop's webhooks; health and readiness are public
(None: no key is sent).

The platform's CI checks this table against the services' OpenAPI documents (each operation exists,
answers that status, with a schema of the model's shape, and its role is one of the scopes the
document's `security` allows), so the client cannot drift from the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from saga_client import models
from saga_client.config import ClientConfig, Role, Service

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation(Generic[M]):
    """One operation. `service` None: every service serves it (health, dead letters). `role`: whose key
    it sends (None: public, no key). `idempotent`: sending it twice has the effect of sending it once, so
    it may be retried after a lost answer. `also_answers`: non-2xx statuses whose body is the answer
    model too (readiness' 503)."""

    service: Service | None
    method: str
    path: str
    status: int
    answer: type[M]
    role: Role | None
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
SHOP, CARRIER, OPERATOR, PUBLIC = Role.SHOP, Role.CARRIER, Role.OPERATOR, None

# The checkout is idempotent by its Idempotency-Key: every retry carries the same key and body.
CHECKOUT = Operation(PAY, "POST", "/checkout", 202, models.CheckoutResult, SHOP)
PAYMENT = Operation(PAY, "GET", "/payments/{order_id}", 200, models.Payment, SHOP)
RETRY_REFUND = Operation(
    PAY, "POST", "/payments/{order_id}/refund/retry", 202, models.RefundQueued, OPERATOR, idempotent=False
)
ORDER = Operation(ORD, "GET", "/orders/{order_id}", 200, models.OrderDetail, SHOP)
ORDERS = Operation(ORD, "GET", "/orders", 200, models.OrderPage, SHOP)
# A second cancel of the same order is answered 202 `ignored`: safe to retry.
CANCEL = Operation(ORD, "POST", "/orders/{order_id}/cancel", 202, models.CancelResult, SHOP)
SET_STOCK = Operation(DLV, "PUT", "/inventory/{sku}", 200, models.Stock, OPERATOR)
STOCK = Operation(DLV, "GET", "/inventory/{sku}", 200, models.StockRow, SHOP)
INVENTORY = Operation(DLV, "GET", "/inventory", 200, models.StockList, SHOP)
LOAD_STOCK = Operation(DLV, "POST", "/inventory", 200, models.StockSet, OPERATOR)
SHIPMENT = Operation(DLV, "GET", "/shipments/{order_id}", 200, models.Shipment, SHOP)
# One per carrier step (`models.CARRIER_STEPS`), by its name; a step made twice is a 409, not retried.
CARRIER_STEP: dict[str, Operation[models.Shipment]] = {
    step.name: Operation(
        DLV, "POST", f"/shipments/{{order_id}}/{step.name}", 200, models.Shipment, CARRIER, idempotent=False
    )
    for step in models.CARRIER_STEPS
}
DEAD_LETTERS = Operation(None, "GET", "/dead-letters", 200, models.DeadLetterPage, OPERATOR)
DEAD_LETTER = Operation(None, "GET", "/dead-letters/{dead_letter_id}", 200, models.DeadLetter, OPERATOR)
RETRY_DEAD_LETTER = Operation(
    None, "POST", "/dead-letters/{dead_letter_id}/retry", 200, models.RetryResults, OPERATOR, idempotent=False
)
DISCARD_DEAD_LETTER = Operation(
    None, "POST", "/dead-letters/{dead_letter_id}/discard", 200, models.Discarded, OPERATOR, idempotent=False
)
# Webhooks are the shop's own; an operator may manage any shop's. A call naming another shop (`owner=`)
# is the operator's: it sends the operator key; every other one sends the shop key (which, in a client
# acting as the operator, is the operator key too: `ClientConfig.acting_as`).
CREATE_WEBHOOK = Operation(
    ORD, "POST", "/webhooks", 201, models.WebhookEndpointCreated, SHOP, idempotent=False
)
CREATE_WEBHOOK_FOR_SHOP = Operation(
    ORD, "POST", "/webhooks", 201, models.WebhookEndpointCreated, OPERATOR, idempotent=False
)
WEBHOOKS = Operation(ORD, "GET", "/webhooks", 200, models.WebhookEndpointList, SHOP)
WEBHOOKS_OF_SHOP = Operation(ORD, "GET", "/webhooks", 200, models.WebhookEndpointList, OPERATOR)
WEBHOOK = Operation(ORD, "GET", "/webhooks/{webhook_id}", 200, models.WebhookEndpoint, SHOP)
# Disabling a disabled endpoint (enabling an enabled one) changes nothing: safe to retry.
DISABLE_WEBHOOK = Operation(ORD, "POST", "/webhooks/{webhook_id}/disable", 200, models.WebhookEndpoint, SHOP)
ENABLE_WEBHOOK = Operation(ORD, "POST", "/webhooks/{webhook_id}/enable", 200, models.WebhookEndpoint, SHOP)
# A second rotation would replace the secret the lost answer carried: never sent again.
ROTATE_WEBHOOK_SECRET = Operation(
    ORD,
    "POST",
    "/webhooks/{webhook_id}/rotate-secret",
    200,
    models.WebhookSecretRotated,
    SHOP,
    idempotent=False,
)
WEBHOOK_ATTEMPTS = Operation(
    ORD, "GET", "/webhooks/{webhook_id}/attempts", 200, models.WebhookAttemptList, SHOP
)
RESEND_WEBHOOK = Operation(
    ORD, "POST", "/webhooks/{webhook_id}/resend", 202, models.WebhookResent, SHOP, idempotent=False
)
# Not retried after a lost answer: the second DELETE of a deleted endpoint is a 404.
DELETE_WEBHOOK = Operation(
    ORD, "DELETE", "/webhooks/{webhook_id}", 200, models.WebhookDeleted, SHOP, idempotent=False
)
HEALTH = Operation(None, "GET", "/healthz", 200, models.Health, PUBLIC)
READINESS = Operation(None, "GET", "/readyz", 200, models.Readiness, PUBLIC, also_answers=frozenset({503}))

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
    *CARRIER_STEP.values(),
    DEAD_LETTERS,
    DEAD_LETTER,
    RETRY_DEAD_LETTER,
    DISCARD_DEAD_LETTER,
    CREATE_WEBHOOK,
    CREATE_WEBHOOK_FOR_SHOP,
    WEBHOOKS,
    WEBHOOKS_OF_SHOP,
    WEBHOOK,
    DISABLE_WEBHOOK,
    ENABLE_WEBHOOK,
    ROTATE_WEBHOOK_SECRET,
    WEBHOOK_ATTEMPTS,
    RESEND_WEBHOOK,
    DELETE_WEBHOOK,
    HEALTH,
    READINESS,
)
