"""Webhooks: every status change of a shop's order told to the endpoints that shop registered.

- `events`: which shop events a change of an order makes, and their body (pure);
- `signing`: secrets and the `Saga-Signature` header (pure);
- `policy`: retries, disabling a failing endpoint, which URLs may receive (pure);
- `store`: the tables' SQL (the events written with the change; deliveries claimed and settled);
- `sender`: the loop that POSTs due deliveries, apart from the saga;
- `api`: the `/webhooks` routes a shop (its own endpoints) and an operator (all) call.
"""
