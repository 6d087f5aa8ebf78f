"""Who may do what on the broker: each service its own principal, the operator one more.

The rule: a service, as its own principal, writes only the topic of its own name, reads only the topics it
consumes within its own consumer group (all three declared in common/services.py), and may describe the
three saga topics (their metadata: `ensure_topics` checks their replication at start). The operator reads
every saga topic (`saga tail`, `saga rebuild`) and reads and describes the services' groups, which is what
describing and resetting a group's offsets takes (`saga replay`, Kafka's consumer-group tool). Nobody but
the broker's super user (`admin`, used only by the local stack to create the topics and these ACLs)
creates, deletes or alters topics, and an ACL allows only what it names: `allow.everyone.if.no.acl.found`
stays false.

A known limit: the operator can also join a service's group (and take its partitions until it leaves).
Kafka checks one operation, Read on the group, for JoinGroup, SyncGroup, Heartbeat and OffsetCommit
alike, and an offset reset (the consumer-group tool's, AdminClient.alterConsumerGroupOffsets, our
`commit_moves`) is an OffsetCommit; no ACL allows the reset without the join. Describing a group and
reading its offsets need only Describe, deleting one Delete (not granted). So only the principal that
resets offsets holds Read on the groups, and the broker refuses its reset while the group has members.

Pure: the grants are data; the local stack applies them with Kafka's own AclCommand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.kafka import TOPICS
from common.services import SERVICES

OPERATOR = "operator"
SERVICE_PRINCIPALS: tuple[str, ...] = tuple(spec.kafka_principal for spec in SERVICES.values())
# Kafka's implication rule: Read, Write, Delete and Alter each imply Describe.
_IMPLIES_DESCRIBE = {"Read", "Write", "Delete", "Alter"}


@dataclass(frozen=True)
class AclGrant:
    """Allow every principal every operation on every resource listed (one AclCommand invocation)."""

    principals: tuple[str, ...]
    operations: tuple[str, ...]
    topics: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def acl_command_args(self) -> list[str]:
        """The arguments of `org.apache.kafka.tools.AclCommand` that add this grant (literal names)."""
        args = ["--add", "--force"]
        for principal in self.principals:
            args += ["--allow-principal", f"User:{principal}"]
        for operation in self.operations:
            args += ["--operation", operation]
        for topic in self.topics:
            args += ["--topic", topic]
        for group in self.groups:
            args += ["--group", group]
        return args


def saga_grants() -> list[AclGrant]:
    """The ACLs of the saga platform, as few grants as the rule allows (each costs a JVM start)."""
    grants = [AclGrant((*SERVICE_PRINCIPALS, OPERATOR), ("Describe",), topics=TOPICS)]
    for spec in SERVICES.values():
        principal = spec.kafka_principal
        grants.append(AclGrant((principal,), ("Write",), topics=(spec.topic,)))
        grants.append(AclGrant((principal,), ("Read",), topics=spec.consumed_topics, groups=(spec.group_id,)))
    grants.append(
        AclGrant(
            (OPERATOR,),
            ("Read", "Describe"),
            topics=TOPICS,
            groups=tuple(spec.group_id for spec in SERVICES.values()),
        )
    )
    return grants


def allows(
    grants: Sequence[AclGrant],
    principal: str,
    operation: str,
    *,
    topic: str | None = None,
    group: str | None = None,
) -> bool:
    """Whether `grants` let `principal` do `operation` on the topic or group named (as the broker decides)."""
    for grant in grants:
        if principal not in grant.principals:
            continue
        if operation not in grant.operations and not (
            operation == "Describe" and _IMPLIES_DESCRIBE.intersection(grant.operations)
        ):
            continue
        if (topic is not None and topic in grant.topics) or (group is not None and group in grant.groups):
            return True
    return False
