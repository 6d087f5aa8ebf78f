"""The broker's ACLs follow the rule: a service, as its own principal, writes its own topic and reads what
it consumes, in its group (each declared in common/services.py)."""

from __future__ import annotations

import pytest

from common.kafka import TOPICS
from common.services import SERVICES, ServiceSpec
from saga_tools.local_stack.kafka_acls import OPERATOR, SERVICE_PRINCIPALS, allows, saga_grants

GRANTS = saga_grants()
DECLARED = pytest.mark.parametrize("spec", list(SERVICES.values()), ids=lambda spec: spec.name)


def test_the_principals_are_the_declared_services_own() -> None:
    assert tuple(spec.kafka_principal for spec in SERVICES.values()) == SERVICE_PRINCIPALS
    assert len(set(SERVICE_PRINCIPALS)) == len(SERVICES) and OPERATOR not in SERVICE_PRINCIPALS


@DECLARED
def test_a_service_writes_only_its_own_topic(spec: ServiceSpec) -> None:
    for topic in TOPICS:
        assert allows(GRANTS, spec.kafka_principal, "Write", topic=topic) == (topic == spec.topic)


@DECLARED
def test_a_service_reads_only_the_topics_it_consumes_within_its_own_group(spec: ServiceSpec) -> None:
    for topic in TOPICS:
        assert allows(GRANTS, spec.kafka_principal, "Read", topic=topic) == (topic in spec.consumed_topics)
    for other in SERVICES.values():
        assert allows(GRANTS, spec.kafka_principal, "Read", group=other.group_id) == (other is spec)


def test_delivery_cannot_publish_what_order_would_believe_came_from_payment() -> None:
    assert not allows(GRANTS, "delivery", "Write", topic="payment")
    assert not allows(GRANTS, "order", "Write", topic="payment")


def test_every_principal_may_describe_the_saga_topics_but_nobody_may_create_or_alter_them() -> None:
    for principal in (*SERVICE_PRINCIPALS, OPERATOR):
        for topic in TOPICS:
            assert allows(GRANTS, principal, "Describe", topic=topic)
            for operation in ("Create", "Delete", "Alter", "AlterConfigs"):
                assert not allows(GRANTS, principal, operation, topic=topic)


def test_the_operator_reads_every_topic_and_describes_and_resets_every_service_group() -> None:
    for topic in TOPICS:
        assert allows(GRANTS, OPERATOR, "Read", topic=topic)
        assert not allows(GRANTS, OPERATOR, "Write", topic=topic)
    for spec in SERVICES.values():
        # Resetting a group's offsets is an offset commit: Read on the group (and on the topic).
        assert allows(GRANTS, OPERATOR, "Read", group=spec.group_id)
        assert allows(GRANTS, OPERATOR, "Describe", group=spec.group_id)


def test_grants_become_acl_command_arguments() -> None:
    args = GRANTS[1].acl_command_args()
    assert args[:2] == ["--add", "--force"]
    assert "--allow-principal" in args and "User:payment" in args
    assert args[args.index("--operation") + 1] == "Write"
