#!/bin/bash
# One broker (and controller) of the compose cluster, secured like `saga run --kafka-security` but without
# TLS (the traffic stays on compose's private network; see README "With Docker"):
# - clients and the brokers among themselves authenticate with SASL/SCRAM-SHA-512 on :9092; the SCRAM
#   users are made as the storage is formatted (first start of the volume), from .env's passwords;
# - the controller listener (:9093, never published) takes SASL/PLAIN as `admin` only;
# - StandardAuthorizer, no access without an ACL; `admin` is the only super user. kafka-init adds the
#   services' and the operator's ACLs (saga_tools/local_stack/kafka_acls.py).
set -euo pipefail
: "${KAFKA_NODE_ID:?}" "${CLUSTER_ID:?}" "${KAFKA_ADMIN_PASSWORD:?run docker/new-secrets.sh}"
umask 077
# Others only for the tests (tests/unit/test_docker_compose.py runs this script with stand-ins).
kafka_bin=${SAGA_KAFKA_BIN:-/opt/kafka/bin}
conf=${SAGA_KAFKA_CONF_DIR:-/tmp}
config=$conf/server.properties
cat > "$config" <<PROPERTIES
process.roles=broker,controller
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093
listeners=SASL_PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=SASL_PLAINTEXT://kafka-${KAFKA_NODE_ID}:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}" user_admin="${KAFKA_ADMIN_PASSWORD}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
default.replication.factor=3
min.insync.replicas=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.dirs=/var/lib/kafka/data
PROPERTIES
# What the health check (and an operator inside the container) connects with.
cat > "$conf/admin.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD}";
PROPERTIES
# The SCRAM users' passwords reach the storage tool through a java @-file (0600, removed once it ran), not
# its command line, which every user of the host sees (ps). The java launcher reads the main class and its
# arguments from the file; kafka-storage.sh would put the main class first, so kafka-run-class.sh runs it.
# printf is a shell builtin: writing the file starts no process either.
format_args=$(mktemp)
{
  printf '"%s"\n' kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$config"
  for principal in admin payment order delivery operator; do
    variable="KAFKA_${principal^^}_PASSWORD"
    printf '"%s"\n' --add-scram "SCRAM-SHA-512=[name=${principal},password=${!variable:?run docker/new-secrets.sh}]"
  done
} > "$format_args"
"$kafka_bin/kafka-run-class.sh" "@$format_args" || { rm -f "$format_args"; exit 1; }
rm -f "$format_args"
exec "$kafka_bin/kafka-server-start.sh" "$config"
