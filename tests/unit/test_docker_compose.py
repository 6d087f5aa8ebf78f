"""docker-compose.yml and the Dockerfile agree with the code (Docker cannot run here, so we check them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import DEFAULT_HTTP_PORTS, Service, Settings, database_env_var
from common.kafka import TOPICS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
KNOWN_VARIABLES = {field.alias for field in Settings.model_fields.values()}
INIT_SCRIPT = (ROOT / "docker" / "postgres-init" / "01-databases.sh").read_text()


def _env(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in SERVICES[name]["environment"].items()}


@pytest.mark.parametrize("name", [*(s.value for s in Service), "migrate"])
def test_every_variable_given_to_our_image_is_a_setting_the_code_reads(name: str) -> None:
    assert set(_env(name)) <= KNOWN_VARIABLES


@pytest.mark.parametrize("service", list(Service), ids=lambda s: s.value)
def test_each_service_runs_its_own_module_with_its_own_database(service: Service) -> None:
    definition = SERVICES[service.value]
    assert definition["command"] == ["python", "-m", service.value]
    assert (ROOT / service.value / "__main__.py").exists()
    env = _env(service.value)
    database_vars = {key for key in env if key.endswith("_DATABASE_URL")}
    assert database_vars == {database_env_var(service)}
    url = env[database_env_var(service)]
    password_var = _password_variable(service)
    match = re.fullmatch(r"postgresql\+psycopg://(\w+):\$\{(\w+):\?[^}]+\}@postgres:5432/(\w+)", url)
    assert match and match.groups() == (service.value, password_var, service.value)
    assert f"CREATE DATABASE {_ident(service.value)} OWNER {_ident(service.value)}" in INIT_SCRIPT
    assert f"CREATE ROLE {_ident(service.value)} LOGIN PASSWORD :'{service.value}_password';" in INIT_SCRIPT
    assert f'-v {service.value}_password="${password_var}"' in INIT_SCRIPT
    assert f"REVOKE CONNECT ON DATABASE {_ident(service.value)} FROM PUBLIC;" in INIT_SCRIPT


def _password_variable(service: Service) -> str:
    return f"{service.value.upper()}_DB_PASSWORD"


def test_every_database_password_comes_from_the_environment_and_none_has_a_default() -> None:
    """No known password in the repository: compose refuses to start until .env provides them."""
    postgres = {key: str(value) for key, value in SERVICES["postgres"]["environment"].items()}
    for name in ["POSTGRES_PASSWORD", *(_password_variable(s) for s in Service)]:
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", postgres[name]), name
    assert postgres["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "PASSWORD '" not in INIT_SCRIPT  # only psql variables, quoted by psql
    secrets_script = (ROOT / "docker" / "new-secrets.sh").read_text()
    assert "umask 077" in secrets_script
    for name in ["POSTGRES_PASSWORD", *(_password_variable(s) for s in Service)]:
        assert name in secrets_script
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def _ident(name: str) -> str:
    return f'"{name}"' if name == "order" else name


@pytest.mark.parametrize("service", list(Service), ids=lambda s: s.value)
def test_published_ports_match_the_port_each_service_listens_on(service: Service) -> None:
    port = DEFAULT_HTTP_PORTS[service]
    assert SERVICES[service.value]["ports"] == [f"{port}:{port}"]
    assert _env(service.value)[f"{service.value.upper()}_HTTP_PORT"] == str(port)
    assert _env(service.value)["SAGA_HTTP_HOST"] == "0.0.0.0"


def test_migrate_step_reaches_all_three_databases() -> None:
    assert SERVICES["migrate"]["command"] == ["saga", "migrate"]
    assert set(_env("migrate")) == {database_env_var(s) for s in Service}


def test_kafka_is_three_replicated_kraft_nodes_the_services_all_know() -> None:
    nodes = {
        name: definition
        for name, definition in SERVICES.items()
        if name.startswith("kafka-") and name[-1].isdigit()
    }
    assert sorted(nodes) == ["kafka-1", "kafka-2", "kafka-3"]
    environments = [definition["environment"] for definition in nodes.values()]
    assert sorted(env["KAFKA_NODE_ID"] for env in environments) == [1, 2, 3]
    for name, env in zip(nodes, environments, strict=True):
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
    for service in Service:
        assert _env(service.value)["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        assert _env(service.value)["SAGA_TOPIC_REPLICATION_FACTOR"] == "3"


def test_the_three_topics_are_created_replicated_before_the_services_start() -> None:
    script = "\n".join(SERVICES["kafka-init"]["command"])
    assert "for topic in " + " ".join(TOPICS) + ";" in script
    assert "--replication-factor 3" in script
    for service in Service:
        assert (
            SERVICES[service.value]["depends_on"]["kafka-init"]["condition"]
            == "service_completed_successfully"
        )
        assert (
            SERVICES[service.value]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )


def test_the_image_contains_every_package_and_the_migrations() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for directory in [*packages, "migrations"]:
        assert f"COPY {directory}/ {directory}/" in dockerfile


def test_order_reaches_payment_inside_the_compose_network() -> None:
    """The public PAYMENT_URL (localhost) is not reachable from the order container; it asks payment
    about orders it has not recorded yet through the service name."""
    assert _env("order")["ORDER_PAYMENT_API_URL"] == "http://payment:8001"
