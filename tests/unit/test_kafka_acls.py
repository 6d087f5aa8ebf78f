"""The broker's ACLs follow the rule: a service writes its own topic, reads what it consumes, in its group."""

from __future__ import annotations

import pytest

from common.config import Service
from common.kafka import CONSUMED_TOPICS, TOPICS, group_id
from saga_tools.local_stack.kafka_acls import OPERATOR, allows, saga_grants

GRANTS = saga_grants()


@pytest.mark.parametrize("service", list(Service))
def test_a_service_writes_only_its_own_topic(service: Service) -> None:
    for topic in TOPICS:
        assert allows(GRANTS, service.value, "Write", topic=topic) == (topic == service.value)


@pytest.mark.parametrize("service", list(Service))
def test_a_service_reads_only_the_topics_it_consumes_within_its_own_group(service: Service) -> None:
    for topic in TOPICS:
        assert allows(GRANTS, service.value, "Read", topic=topic) == (topic in CONSUMED_TOPICS[service])
    for other in Service:
        assert allows(GRANTS, service.value, "Read", group=group_id(other)) == (other is service)


def test_delivery_cannot_publish_what_order_would_believe_came_from_payment() -> None:
    assert not allows(GRANTS, "delivery", "Write", topic="payment")
    assert not allows(GRANTS, "order", "Write", topic="payment")


def test_every_principal_may_describe_the_saga_topics_but_nobody_may_create_or_alter_them() -> None:
    for principal in (*[s.value for s in Service], OPERATOR):
        for topic in TOPICS:
            assert allows(GRANTS, principal, "Describe", topic=topic)
            for operation in ("Create", "Delete", "Alter", "AlterConfigs"):
                assert not allows(GRANTS, principal, operation, topic=topic)


def test_the_operator_reads_every_topic_and_describes_and_resets_every_service_group() -> None:
    for topic in TOPICS:
        assert allows(GRANTS, OPERATOR, "Read", topic=topic)
        assert not allows(GRANTS, OPERATOR, "Write", topic=topic)
    for service in Service:
        # Resetting a group's offsets is an offset commit: Read on the group (and on the topic).
        assert allows(GRANTS, OPERATOR, "Read", group=group_id(service))
        assert allows(GRANTS, OPERATOR, "Describe", group=group_id(service))


def test_grants_become_acl_command_arguments() -> None:
    args = GRANTS[1].acl_command_args()
    assert args[:2] == ["--add", "--force"]
    assert "--allow-principal" in args and "User:payment" in args
    assert args[args.index("--operation") + 1] == "Write"
