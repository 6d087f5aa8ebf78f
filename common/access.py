"""Who may call which route: the scopes each kind of operation needs (the rules are in common/auth.py)."""

from __future__ import annotations

from common.auth import PUBLIC, Access, Scope

__all__ = ["CARRIER", "OPERATOR", "PAYMENT_READ", "PUBLIC", "SHIPMENT_READ", "SHOP", "SHOP_READ"]

# A shop's writes: checkout and a customer's cancel.
SHOP = Access.of(Scope.SHOP)
# What a shop reads, an operator reads too.
SHOP_READ = Access.of(Scope.SHOP, Scope.OPERATOR)
# A payment is read by its shop, operators, and the order service (for an order not recorded yet).
PAYMENT_READ = Access.of(Scope.SHOP, Scope.OPERATOR, Scope.PAYMENT_LOOKUP)
# The carrier's steps: ship, deliver.
CARRIER = Access.of(Scope.CARRIER)
# A shipment is read by the shop, the carrier moving it and operators.
SHIPMENT_READ = Access.of(Scope.SHOP, Scope.CARRIER, Scope.OPERATOR)
# Stock writes, refund retries, dead letters, metrics.
OPERATOR = Access.of(Scope.OPERATOR)
