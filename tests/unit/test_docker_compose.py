"""docker-compose.yml, docker/ and the Dockerfile agree with the code (Docker cannot run here, so we check
them): each service as common/services.py declares it (its module, port, principal, database and role,
topics and group), written by hand in YAML and shell and compared here rather than generated."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.auth import Caller, Scope, identify, parse_entries
from common.config import DEFAULT_CONSOLE_HTTP_PORT, Service, Settings
from common.kafka import TOPICS
from common.services import SERVICES, ServiceSpec
from saga_tools.local_stack.kafka_acls import saga_grants
from saga_tools.local_stack.local_kafka_security import PRINCIPALS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONTAINERS: dict[str, Any] = COMPOSE["services"]  # compose's services: ours, Kafka's, PostgreSQL's
KNOWN_VARIABLES = {field.alias for field in Settings.model_fields.values()}
INIT_SCRIPT = (ROOT / "docker" / "postgres-init" / "01-databases.sh").read_text()
KAFKA_START = (ROOT / "docker" / "kafka" / "start.sh").read_text()
DECLARED = pytest.mark.parametrize("spec", list(SERVICES.values()), ids=lambda spec: spec.name)


def _env(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in CONTAINERS[name]["environment"].items()}


@pytest.mark.parametrize("name", [*(spec.name for spec in SERVICES.values()), "migrate"])
def test_every_variable_given_to_our_image_is_a_setting_the_code_reads(name: str) -> None:
    assert set(_env(name)) <= KNOWN_VARIABLES


def test_compose_runs_exactly_the_declared_services_on_our_image() -> None:
    image = "saga-platform:local"
    ours = {name for name, definition in CONTAINERS.items() if definition.get("image") == image}
    assert ours == {spec.name for spec in SERVICES.values()} | {"migrate"}


@DECLARED
def test_each_service_runs_its_own_module_with_its_own_database(spec: ServiceSpec) -> None:
    definition = CONTAINERS[spec.name]
    assert definition["command"] == ["python", "-m", spec.module]
    assert (ROOT / spec.module / "__main__.py").exists()
    env = _env(spec.name)
    database_vars = {key for key in env if key.endswith("_DATABASE_URL")}
    assert database_vars == {spec.database_url_variable}
    url = env[spec.database_url_variable]
    password_var = _password_variable(spec)
    match = re.fullmatch(r"postgresql\+psycopg://(\w+):\$\{(\w+):\?[^}]+\}@postgres:5432/(\w+)", url)
    assert match and match.groups() == (spec.database_role, password_var, spec.database)
    role, database = _ident(spec.database_role), _ident(spec.database)
    assert f"CREATE DATABASE {database} OWNER {role}" in INIT_SCRIPT
    assert f"CREATE ROLE {role} LOGIN PASSWORD :'{spec.database_role}_password';" in INIT_SCRIPT
    assert f"\\getenv {spec.database_role}_password {password_var}\n" in INIT_SCRIPT
    assert f"REVOKE CONNECT ON DATABASE {database} FROM PUBLIC;" in INIT_SCRIPT


def test_the_init_script_creates_the_declared_roles_and_databases_and_no_other() -> None:
    roles = re.findall(r"^CREATE ROLE (\S+) LOGIN", INIT_SCRIPT, flags=re.MULTILINE)
    databases = re.findall(r"^CREATE DATABASE (\S+) OWNER", INIT_SCRIPT, flags=re.MULTILINE)
    assert roles == [_ident(spec.database_role) for spec in SERVICES.values()]
    assert databases == [_ident(spec.database) for spec in SERVICES.values()]


def _password_variable(spec: ServiceSpec) -> str:
    """The .env variable of a database role's password."""
    return f"{spec.database_role.upper()}_DB_PASSWORD"


def test_every_database_password_comes_from_the_environment_and_none_has_a_default() -> None:
    """No known password in the repository: compose refuses to start until .env provides them."""
    postgres = {key: str(value) for key, value in CONTAINERS["postgres"]["environment"].items()}
    for name in ["POSTGRES_PASSWORD", *(_password_variable(spec) for spec in SERVICES.values())]:
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", postgres[name]), name
    assert postgres["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "PASSWORD '" not in INIT_SCRIPT  # only psql variables, quoted by psql
    secrets_script = (ROOT / "docker" / "new-secrets.sh").read_text()
    assert "umask 077" in secrets_script
    for name in ["POSTGRES_PASSWORD", *(_password_variable(spec) for spec in SERVICES.values())]:
        assert name in secrets_script
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def _ident(name: str) -> str:
    return f'"{name}"' if name == "order" else name  # a reserved word in SQL


@DECLARED
def test_published_ports_match_the_port_each_service_listens_on(spec: ServiceSpec) -> None:
    port = spec.http_port
    assert CONTAINERS[spec.name]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert _env(spec.name)[spec.http_port_variable] == str(port)
    assert _env(spec.name)["SAGA_HTTP_HOST"] == "0.0.0.0"
    # Its public URL, for `Location` headers: where the published port is reached from this machine.
    assert _env(spec.name)[spec.url_variable] == f"http://localhost:{port}"


def test_the_image_exposes_the_declared_ports_and_the_consoles() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    (expose,) = re.findall(r"^EXPOSE (.+)$", dockerfile, flags=re.MULTILINE)
    ports = [*(spec.http_port for spec in SERVICES.values()), DEFAULT_CONSOLE_HTTP_PORT]
    assert expose.split() == [str(port) for port in ports]


def test_migrate_step_reaches_all_three_databases() -> None:
    assert CONTAINERS["migrate"]["command"] == ["saga", "migrate"]
    assert set(_env("migrate")) == {spec.database_url_variable for spec in SERVICES.values()}


def test_kafka_is_three_replicated_kraft_nodes_the_services_all_know() -> None:
    nodes = {
        name: definition
        for name, definition in CONTAINERS.items()
        if name.startswith("kafka-") and name[-1].isdigit()
    }
    assert sorted(nodes) == ["kafka-1", "kafka-2", "kafka-3"]
    environments = [definition["environment"] for definition in nodes.values()]
    assert sorted(env["KAFKA_NODE_ID"] for env in environments) == [1, 2, 3]
    for definition in nodes.values():
        assert definition["entrypoint"] == ["/bin/bash", "/saga/start.sh"]
        assert "./docker/kafka/start.sh:/saga/start.sh:ro" in definition["volumes"]
    for line in (
        "controller.quorum.voters=1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093",
        "advertised.listeners=SASL_PLAINTEXT://kafka-${KAFKA_NODE_ID}:9092",
        "default.replication.factor=3",
        "offsets.topic.replication.factor=3",
        "min.insync.replicas=2",
        "transaction.state.log.min.isr=2",
    ):
        assert line in KAFKA_START, line
    for spec in SERVICES.values():
        assert _env(spec.name)["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        # The replication follows the cluster (three copies on three brokers): nothing to set.
        assert "SAGA_TOPIC_REPLICATION_FACTOR" not in _env(spec.name)


def test_the_brokers_let_in_only_scram_principals_and_allow_only_what_an_acl_grants() -> None:
    for line in (
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        "super.users=User:admin",
    ):
        assert line in KAFKA_START, line
    # The same principals as the local stack's secured broker: admin, the services', the operator.
    assert "for principal in " + " ".join(PRINCIPALS) + ";" in KAFKA_START
    kafka_env = COMPOSE["x-kafka-env"]
    assert {key for key in kafka_env if key.endswith("_PASSWORD")} == {_kafka_password(p) for p in PRINCIPALS}


def _kafka_password(principal: str) -> str:
    return f"KAFKA_{principal.upper()}_PASSWORD"


@DECLARED
def test_each_service_connects_to_kafka_as_its_own_principal_with_a_password_from_env(
    spec: ServiceSpec,
) -> None:
    env = _env(spec.name)
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_USERNAME"] == spec.kafka_principal
    password = _kafka_password(spec.kafka_principal)
    assert re.fullmatch(rf"\$\{{{password}:\?[^}}]+\}}", env["KAFKA_SASL_PASSWORD"])


def test_kafka_init_adds_exactly_the_acls_of_the_platforms_grants() -> None:
    script = "\n".join(CONTAINERS["kafka-init"]["command"])
    block = script.split("<<'GRANTS'\n", 1)[1].split("\nGRANTS", 1)[0]
    assert block.splitlines() == [" ".join(grant.acl_command_args()) for grant in saga_grants()]


def test_the_apis_take_keys_whose_digests_and_keys_come_from_env() -> None:
    for spec in SERVICES.values():
        assert re.fullmatch(r"\$\{SAGA_API_KEYS:\?[^}]+\}", _env(spec.name)["SAGA_API_KEYS"])
        assert "SAGA_DISABLE_AUTHENTICATION" not in _env(spec.name)
    assert re.fullmatch(r"\$\{ORDER_PAYMENT_API_KEY:\?[^}]+\}", _env("order")["ORDER_PAYMENT_API_KEY"])


def test_new_secrets_writes_a_private_env_whose_entries_let_in_exactly_its_keys(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    shutil.copy(ROOT / "docker" / "new-secrets.sh", tmp_path / "docker")
    subprocess.run(["sh", str(tmp_path / "docker" / "new-secrets.sh")], check=True, capture_output=True)
    env_file = tmp_path / ".env"
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    entries = parse_entries(values["SAGA_API_KEYS"].strip('"'))

    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    for variable, expected in [
        ("SHOP_API_KEY", Caller("demo-shop", frozenset({Scope.SHOP}))),
        ("CARRIER_API_KEY", Caller("demo-carrier", frozenset({Scope.CARRIER}), frozenset({"demo-shop"}))),
        ("OPERATOR_API_KEY", Caller("demo-operator", frozenset({Scope.OPERATOR}))),
        ("ORDER_PAYMENT_API_KEY", Caller("order-service", frozenset({Scope.PAYMENT_LOOKUP}))),
    ]:
        assert identify(entries, values[variable]) == expected
        assert values[variable] not in values["SAGA_API_KEYS"]
    for principal in PRINCIPALS:
        assert len(values[_kafka_password(principal)]) == 48


def test_the_three_topics_are_created_replicated_before_the_services_start() -> None:
    script = "\n".join(CONTAINERS["kafka-init"]["command"])
    assert "for topic in " + " ".join(TOPICS) + ";" in script
    assert "--replication-factor 3" in script
    for spec in SERVICES.values():
        assert (
            CONTAINERS[spec.name]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        )
        assert CONTAINERS[spec.name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_image_contains_every_package_and_the_migrations() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for directory in [*packages, "migrations"]:
        assert f"COPY {directory}/ {directory}/" in dockerfile


def test_order_reaches_payment_inside_the_compose_network() -> None:
    """The public PAYMENT_URL (localhost) is not reachable from the order container; it asks payment
    about orders it has not recorded yet through the service name."""
    payment = SERVICES[Service.PAYMENT]
    assert _env("order")["ORDER_PAYMENT_API_URL"] == f"http://{payment.name}:{payment.http_port}"


def test_nothing_is_published_beyond_this_machine() -> None:
    """A published port without an address listens on every interface of the host (and Docker's own
    firewall rules bypass ufw's); the platform's are for this machine, a proxy in front for others."""
    for name, definition in CONTAINERS.items():
        for published in definition.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), (name, published)


def _run_with_stubs(script: Path, env: dict[str, str], stubs: Path) -> None:
    """Run `script` with `env` (and the stubs' folder first on PATH): the stubs record their arguments."""
    result = subprocess.run(
        ["bash", str(script)], env={"PATH": f"{stubs}:/usr/bin:/bin", **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def _recording_stub(path: Path, *extra: str) -> None:
    """An executable that writes its arguments, one a line, to `<path>.argv` (and runs `extra`)."""
    path.write_text(
        f'#!/bin/bash\nprintf "%s\\n" "$0" "$@" > "{path}.argv"\n' + "".join(f"{line}\n" for line in extra)
    )
    path.chmod(0o755)


def test_the_database_init_script_gives_psql_no_password_on_its_command_line(tmp_path: Path) -> None:
    passwords = {_password_variable(spec): f"pw-{spec.name}-{'x' * 20}" for spec in SERVICES.values()}
    _recording_stub(tmp_path / "psql", f'cat > "{tmp_path}/psql.stdin"')

    _run_with_stubs(
        ROOT / "docker" / "postgres-init" / "01-databases.sh",
        {"POSTGRES_USER": "postgres", **passwords},
        tmp_path,
    )

    argv = (tmp_path / "psql.argv").read_text()
    stdin = (tmp_path / "psql.stdin").read_text()
    for variable, password in passwords.items():
        assert password not in argv and password not in stdin
        assert f" {variable}\n" in stdin  # psql reads it from its environment


def test_the_kafka_start_script_gives_the_storage_tool_no_password_on_its_command_line(
    tmp_path: Path,
) -> None:
    passwords = {_kafka_password(p): f"pw-{p}-{'y' * 20}" for p in PRINCIPALS}
    # The storage tool's stand-in keeps the @-file the java launcher would read, to check it.
    _recording_stub(tmp_path / "kafka-run-class.sh", f'cp "${{1#@}}" "{tmp_path}/format.args"')
    _recording_stub(tmp_path / "kafka-server-start.sh")
    env = {
        "KAFKA_NODE_ID": "1",
        "CLUSTER_ID": "kK7b2Vq3SZyqgOWQdnG0bA",
        "SAGA_KAFKA_BIN": str(tmp_path),
        "SAGA_KAFKA_CONF_DIR": str(tmp_path),
        **passwords,
    }

    _run_with_stubs(ROOT / "docker" / "kafka" / "start.sh", env, tmp_path)

    run_class = (tmp_path / "kafka-run-class.sh.argv").read_text().splitlines()
    assert len(run_class) == 2 and run_class[1].startswith("@")
    assert not Path(run_class[1][1:]).exists()  # removed once the tool ran
    args = (tmp_path / "format.args").read_text().splitlines()
    assert args[:3] == ['"kafka.tools.StorageTool"', '"format"', '"--ignore-formatted"']
    for principal in PRINCIPALS:
        password = passwords[_kafka_password(principal)]
        assert f'"SCRAM-SHA-512=[name={principal},password={password}]"' in args
        assert password not in "".join(run_class)
    server_start = (tmp_path / "kafka-server-start.sh.argv").read_text().splitlines()
    assert server_start[1:] == [str(tmp_path / "server.properties")]
