"""What a test made on the platform: the checkouts it sent and the SKUs it stocked.

The consistency checker looks at these and nothing else, so it also works on a platform shared with
other tests or other users: a checkout is recorded before it is sent (its order id is chosen by the
client), so even one whose answer was lost is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from saga_client.calls import CheckoutAttempt


@dataclass
class Ledger:
    checkouts: dict[str, CheckoutAttempt] = field(default_factory=dict)  # by order id
    skus: set[str] = field(default_factory=set)  # stocked by `saga_stock`: unique to the test
    parent: Ledger | None = None  # the session's ledger, which sees everything too

    def record_checkout(self, attempt: CheckoutAttempt) -> None:
        self.checkouts[attempt.order_id] = attempt
        if self.parent is not None:
            self.parent.record_checkout(attempt)

    def record_sku(self, sku: str) -> None:
        self.skus.add(sku)
        if self.parent is not None:
            self.parent.record_sku(sku)
