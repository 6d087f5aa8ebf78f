"""How the operator commands reach the services (their HTTP APIs) and Kafka (as a client): their failures
as clear errors with the exit codes scripts rely on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiokafka.errors import KafkaConnectionError

from common.ops.apis import NotFound, Refused, ServiceApis, ServiceUnavailable
from common.ops.console import Exit, fail, operator_settings

T = TypeVar("T")


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
            raise fail(f"refused ({exc.status}): {exc}", Exit.FAILED) from exc


def run_kafka(bootstrap: str, work: Coroutine[Any, Any, T]) -> T:
    """Run a Kafka client coroutine; an unreachable broker is exit code 3 with the address tried."""
    try:
        return asyncio.run(work)
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        raise fail(
            f"Kafka is not reachable at {bootstrap} ({exc.__class__.__name__})", Exit.UNAVAILABLE
        ) from exc
