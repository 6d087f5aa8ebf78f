"""Provisioning a secured local broker: the saga topics, created by the super user, and the ACLs.

The services' principals may not create topics (saga_tools/local_stack/kafka_acls.py), so the stack creates
them as `admin` before any service starts; `ensure_topics` in a service then only describes them. The ACLs are
added with Kafka's own AclCommand (`org.apache.kafka.tools.AclCommand`, kafka-tools), one JVM per grant,
run side by side; a warm start whose cluster already holds them skips that step.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

from common.config import Settings
from common.kafka import ensure_topics
from common.kafka_security import KafkaConnection
from saga_tools.local_stack.kafka_acls import AclGrant, saga_grants
from saga_tools.local_stack.local_kafka import KafkaCluster, KafkaSetupError, kafka_tool_command
from saga_tools.local_stack.local_kafka_security import ADMIN, LocalKafkaSecurity

ACL_TOOL = "org.apache.kafka.tools.AclCommand"
# A short-lived tool: the client compiler alone starts faster, and it needs little heap.
_TOOL_JVM = ("-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def provision_saga_access(cluster: KafkaCluster, settings: Settings) -> None:
    """Create the saga topics as the super user, then grant each principal its ACLs (once per cluster)."""
    security = cluster.security
    assert security is not None, "only a secured cluster has principals to provision"
    bootstrap = cluster.bootstrap_servers
    asyncio.run(ensure_topics(admin_settings(settings, security, bootstrap)))
    grants = saga_grants()
    marker = security.directory / "acls.json"
    wanted = json.dumps({"cluster_id": cluster.cluster_id, "grants": [g.acl_command_args() for g in grants]})
    if marker.exists() and marker.read_text() == wanted:
        return
    admin = security.connection(bootstrap, ADMIN)
    # Two at a time: each JVM is CPU-bound for ~2 s, and a small machine has few cores to share.
    with admin.java_config_file() as config, ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda grant: _add(cluster, admin, str(config), grant, security), grants))
    marker.write_text(wanted)


def admin_settings(settings: Settings, security: LocalKafkaSecurity, bootstrap: str) -> Settings:
    """`settings` connecting as the local broker's super user."""
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": ADMIN,
            "kafka_sasl_password": security.password(ADMIN),
            "kafka_ssl_cafile": security.ca_file,
        }
    )


def _add(
    cluster: KafkaCluster, admin: KafkaConnection, config: str, grant: AclGrant, security: LocalKafkaSecurity
) -> None:
    command = kafka_tool_command(
        cluster.jars,
        ACL_TOOL,
        "--bootstrap-server",
        admin.bootstrap_servers,
        "--command-config",
        config,
        *grant.acl_command_args(),
        jvm_options=_TOOL_JVM,
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        output = security.redact(result.stdout + result.stderr)[-3000:]
        raise KafkaSetupError(f"adding the ACLs {grant} failed:\n{output}")
