"""Why the broker fails, when a service can know it: the last error the broker itself answered a publish
with, which readiness adds to its `broker` check so an operator reads the cause, not only the symptom.

A broker whose log directory fails (a full disk) answers produce requests with KAFKA_STORAGE_ERROR for a
moment, then halts (KIP-112); from then on a client sees only that it cannot connect. The refusal it got
first is the cause, and it is remembered until a publish succeeds again. aiokafka retries such an answer
inside its producer and raises nothing to the caller until the send times out; the one place it tells of
it is its sender's warning (`Got error produce response on topic-partition …, retrying. Error: …`), which
`ProduceRefusals.handler` reads.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from aiokafka import errors

SENDER_LOGGER = "aiokafka.producer.sender"  # where aiokafka warns of a produce error it retries
_RETRYING = "Got error produce response on topic-partition"


class Cause(enum.StrEnum):
    """What a broker's produce error says about the broker."""

    DISK = "disk"  # a log directory failed: its disk is full or broken
    REPLICAS = "replicas"  # too few in-sync replicas to accept an acks=all write
    OTHER = "other"


def cause_of(error: type[errors.KafkaError]) -> Cause:
    """The broker-side cause a produce error names (the rule readiness states it by)."""
    if issubclass(error, errors.KafkaStorageError):
        return Cause.DISK
    if issubclass(error, errors.NotEnoughReplicasError | errors.NotEnoughReplicasAfterAppendError):
        return Cause.REPLICAS
    return Cause.OTHER


@dataclass(frozen=True)
class Refusal:
    """A produce error the broker answered with, and when (the clock of `ProduceRefusals`)."""

    error: type[errors.KafkaError]
    at: float


def broker_failure(failure: BaseException, refusal: Refusal | None, now: float) -> str:
    """The reason readiness gives for a failed broker check: the failure itself, then, when the broker
    refused a publish since the last one it accepted, that refusal and what it means (the cause an
    operator acts on: the broker's disk, its replicas)."""
    reason = repr(failure)
    if refusal is None:
        return reason
    code = getattr(refusal.error, "message", refusal.error.__name__)
    said = f"{refusal.error.__name__} ({code}) {now - refusal.at:.1f} s ago"
    cause = cause_of(refusal.error)
    match cause:
        case Cause.DISK:
            meaning = "its log directory failed: a full or broken disk"
        case Cause.REPLICAS:
            meaning = "too few in-sync replicas for an acks=all write"
        case Cause.OTHER:
            meaning = ""
        case _:
            assert_never(cause)
    answered = f"the broker's last answer to a publish: {said}" + (f"; {meaning}" if meaning else "")
    return f"{answered}; now {reason}"


class ProduceRefusals:
    """The last produce error the broker answered this process with, forgotten when a publish succeeds.
    `handler` is attached to aiokafka's sender logger while a producer runs (`LazyProducer`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last: Refusal | None = None
        self.handler = _RefusalHandler(self)

    def refused(self, error: type[errors.KafkaError]) -> None:
        self.last = Refusal(error, self._clock())

    def accepted(self) -> None:
        self.last = None

    def reason(self, failure: BaseException) -> str:
        return broker_failure(failure, self.last, self._clock())

    def listen(self) -> None:
        """Hear aiokafka's sender (idempotent). A service silences aiokafka below ERROR (its connection
        warnings flood an outage, common/worker.py); then the sender's warnings are let through to this
        handler alone, and still not to the service's log."""
        logger = logging.getLogger(SENDER_LOGGER)
        if self.handler in logger.handlers:
            return
        if not logger.isEnabledFor(logging.WARNING):
            logger.setLevel(logging.WARNING)
            logger.propagate = False
        logger.addHandler(self.handler)

    def stop_listening(self) -> None:
        logging.getLogger(SENDER_LOGGER).removeHandler(self.handler)


class _RefusalHandler(logging.Handler):
    def __init__(self, refusals: ProduceRefusals) -> None:
        super().__init__(logging.WARNING)
        self._refusals = refusals

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not record.msg.startswith(_RETRYING):
            return
        error = record.args[-1] if isinstance(record.args, tuple) and record.args else None
        if isinstance(error, type) and issubclass(error, errors.KafkaError):
            self._refusals.refused(error)
