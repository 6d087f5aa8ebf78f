"""A typed Python client of the saga platform's HTTP API (`SagaClient`, `AsyncSagaClient`).

It depends on httpx and pydantic only. The pytest plugin (`pip install 'saga-client[pytest]'`) lives in
`saga_client.pytest_plugin` and `saga_client.testing`.
"""

from saga_client.calls import CheckoutAttempt
from saga_client.client import AsyncSagaClient, SagaClient
from saga_client.config import ClientConfig, RetryPolicy, Role, Service
from saga_client.errors import (
    AccessDenied,
    ApiError,
    Conflict,
    FieldProblem,
    Forbidden,
    IdempotencyConflict,
    NoFailedRefund,
    NotCancellable,
    NotFound,
    OrderIdTaken,
    SagaError,
    ServerError,
    Unauthenticated,
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
    "AccessDenied",
    "Address",
    "ApiError",
    "AsyncSagaClient",
    "Cancellation",
    "CheckoutAttempt",
    "ClientConfig",
    "Conflict",
    "FieldProblem",
    "Forbidden",
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
    "Role",
    "SagaClient",
    "SagaError",
    "ServerError",
    "Service",
    "ShipmentStatus",
    "Unauthenticated",
    "Unavailable",
    "UnexpectedOutcome",
    "ValidationFailed",
    "WaitTimeout",
    "WrongState",
]
