"""How the operator commands reach the services (their HTTP APIs) and Kafka (as a client): their failures
as clear errors with the exit codes scripts rely on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from common.kafka_security import KafkaConnection
from common.service_apis import NotFound, Refused, ServiceApis, ServiceUnavailable
from saga_tools.ops.command_kit import Exit, fail, operator_settings

T = TypeVar("T")

# The broker knows the client but will not let it (bad credentials, or an ACL that does not allow it).
REFUSED_PRINCIPAL = (
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


def with_apis(action: Callable[[ServiceApis], T]) -> T:
    """Run `action` against the services, turning their failures into clear errors and exit codes."""
    with ServiceApis(operator_settings()) as apis:
        try:
            return action(apis)
        except ServiceUnavailable as exc:
            raise fail(str(exc), Exit.UNAVAILABLE) from exc
        except NotFound as exc:
            raise fail(str(exc), Exit.NOT_FOUND) from exc
        except Refused as exc:
            # A key the service does not take is configuration (exit 2), like a broker refusing a principal.
            code = Exit.USAGE if exc.status in (401, 403) else Exit.FAILED
            raise fail(f"refused ({exc.status}): {exc}", code) from exc


def run_kafka(kafka: KafkaConnection, work: Coroutine[Any, Any, T]) -> T:
    """Run a Kafka client coroutine; an unreachable broker is exit code 3 with the address tried, and
    credentials the broker refuses (authentication or ACLs) exit code 2, naming the principal only."""
    try:
        return asyncio.run(work)
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        raise fail(
            f"Kafka is not reachable at {kafka.describe()} ({exc.__class__.__name__})", Exit.UNAVAILABLE
        ) from exc
    except REFUSED_PRINCIPAL as exc:
        raise fail(
            f"Kafka at {kafka.describe()} refused this principal ({exc.__class__.__name__}): check the "
            "KAFKA_SASL_* settings and the principal's ACLs",
            Exit.USAGE,
        ) from exc
