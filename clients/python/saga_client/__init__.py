"""A typed Python client of the saga platform's HTTP API (`SagaClient`, `AsyncSagaClient`).

It depends on httpx and pydantic only. The pytest plugin (`pip install 'saga-client[pytest]'`) lives in
`saga_client.pytest_plugin` and `saga_client.testing`.
"""

from saga_client.calls import CheckoutAttempt
from saga_client.client import AsyncSagaClient, SagaClient
from saga_client.config import ClientConfig, RetryPolicy, Service
from saga_client.errors import (
    ApiError,
    Conflict,
    FieldProblem,
    IdempotencyConflict,
    NoFailedRefund,
    NotCancellable,
    NotFound,
    OrderIdTaken,
    SagaError,
    ServerError,
    Unavailable,
    UnexpectedOutcome,
    ValidationFailed,
    WaitTimeout,
    WrongState,
)
from saga_client.models import (
    ACCEPTED,
    SETTLED,
    TERMINAL,
    Address,
    Cancellation,
    Line,
    OrderDetail,
    OrderStatus,
    PaymentStatus,
    RefundStatus,
    ShipmentStatus,
)

__all__ = [
    "ACCEPTED",
    "SETTLED",
    "TERMINAL",
    "Address",
    "ApiError",
    "AsyncSagaClient",
    "Cancellation",
    "CheckoutAttempt",
    "ClientConfig",
    "Conflict",
    "FieldProblem",
    "IdempotencyConflict",
    "Line",
    "NoFailedRefund",
    "NotCancellable",
    "NotFound",
    "OrderDetail",
    "OrderIdTaken",
    "OrderStatus",
    "PaymentStatus",
    "RefundStatus",
    "RetryPolicy",
    "SagaClient",
    "SagaError",
    "ServerError",
    "Service",
    "ShipmentStatus",
    "Unavailable",
    "UnexpectedOutcome",
    "ValidationFailed",
    "WaitTimeout",
    "WrongState",
]
