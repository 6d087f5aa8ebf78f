"""How readiness names why the broker fails (`common/broker_health.py`): the broker's own last refusal of a
publish, when there was one since the last publish it accepted."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from aiokafka import errors
from aiokafka.producer.sender import SendProduceReqHandler
from aiokafka.structs import TopicPartition

from common.broker_health import SENDER_LOGGER, Cause, ProduceRefusals, Refusal, broker_failure, cause_of

UNREACHABLE = errors.KafkaConnectionError("Unable to bootstrap from [('10.250.1.2', 41000, <AF_INET>)]")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (errors.KafkaStorageError, Cause.DISK),
        (errors.NotEnoughReplicasError, Cause.REPLICAS),
        (errors.NotEnoughReplicasAfterAppendError, Cause.REPLICAS),
        (errors.NotLeaderForPartitionError, Cause.OTHER),
    ],
)
def test_a_produce_error_names_the_brokers_disk_or_its_replicas(
    error: type[errors.KafkaError], cause: Cause
) -> None:
    assert cause_of(error) is cause


def test_a_full_disk_refused_before_the_broker_went_away_is_named_before_the_connection_error() -> None:
    reason = broker_failure(UNREACHABLE, Refusal(errors.KafkaStorageError, at=90.0), now=102.5)
    assert reason.startswith(
        "the broker's last answer to a publish: KafkaStorageError (KAFKA_STORAGE_ERROR) 12.5 s ago;"
        " its log directory failed: a full or broken disk; now KafkaConnectionError("
    )
    assert "Unable to bootstrap" in reason


def test_too_few_replicas_is_named_as_such() -> None:
    reason = broker_failure(TimeoutError(), Refusal(errors.NotEnoughReplicasError, at=100.0), now=100.0)
    assert "NotEnoughReplicasError (NOT_ENOUGH_REPLICAS) 0.0 s ago; too few in-sync replicas" in reason


def test_an_error_that_says_nothing_of_the_broker_is_named_without_a_meaning() -> None:
    reason = broker_failure(TimeoutError(), Refusal(errors.NotLeaderForPartitionError, at=100.0), now=101.0)
    assert reason == (
        "the broker's last answer to a publish: NotLeaderForPartitionError (NOT_LEADER_FOR_PARTITION)"
        " 1.0 s ago; now TimeoutError()"
    )


def test_without_a_refusal_the_reason_is_the_failure_alone() -> None:
    assert broker_failure(UNREACHABLE, None, now=0.0) == repr(UNREACHABLE)


def _retried_by_aiokafka(error_code: int) -> None:
    """aiokafka's own sender handling a produce answer with `error_code` for one partition, which it
    retries (a retriable error, a batch not expired) and warns of."""
    sender = SimpleNamespace(
        _retry_backoff=0.1,
        _txn_manager=None,
        client=SimpleNamespace(force_metadata_update=lambda: None),
    )
    batch = SimpleNamespace(expired=lambda: False)
    handler = SendProduceReqHandler(sender, {TopicPartition("payment", 0): batch})
    response = SimpleNamespace(API_VERSION=5, topics=[("payment", [(0, error_code, -1, -1, -1)])])
    handler.handle_response(response)


def test_the_refusal_aiokafka_retries_is_heard_and_forgotten_once_a_publish_is_accepted() -> None:
    clock = Clock()
    refusals = ProduceRefusals(clock)
    sender_log = logging.getLogger(SENDER_LOGGER)
    level, propagate = sender_log.level, sender_log.propagate
    silenced = logging.getLogger("aiokafka")
    silenced_level = silenced.level
    silenced.setLevel(logging.ERROR)  # as a service runs (common/worker.py)
    try:
        refusals.listen()
        refusals.listen()  # once only
        assert sender_log.handlers.count(refusals.handler) == 1
        _retried_by_aiokafka(errors.KafkaStorageError.errno)
        assert refusals.last == Refusal(errors.KafkaStorageError, 100.0)
        clock.now = 103.0
        assert refusals.reason(UNREACHABLE).startswith(
            "the broker's last answer to a publish: KafkaStorageError (KAFKA_STORAGE_ERROR) 3.0 s ago"
        )
        refusals.accepted()
        assert refusals.reason(UNREACHABLE) == repr(UNREACHABLE)
    finally:
        refusals.stop_listening()
        sender_log.setLevel(level)
        sender_log.propagate = propagate
        silenced.setLevel(silenced_level)
    assert refusals.handler not in sender_log.handlers
