"""Each service is declared once (common/services.py), and what names it elsewhere reads that declaration:
the settings' variables and default ports, the supervisor's processes, and the Python client's defaults
(which cannot import the platform, so it is compared here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import DEFAULT_CONSOLE_HTTP_PORT, Settings, database_env_var
from common.kafka import TOPICS
from common.services import SERVICES, Service, ServiceSpec
from saga_client.config import DEFAULT_URLS
from saga_client.config import Service as ClientService
from saga_tools.supervisor import service_processes

DECLARED = pytest.mark.parametrize("spec", list(SERVICES.values()), ids=lambda spec: spec.name)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No service variable set by the shell running the tests."""
    for spec in SERVICES.values():
        for variable in (spec.database_url_variable, spec.http_port_variable, spec.url_variable):
            monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_every_service_is_declared_in_its_order() -> None:
    assert list(SERVICES) == list(Service)
    assert all(spec.service is service for service, spec in SERVICES.items())


def test_each_service_listens_on_a_port_of_its_own() -> None:
    ports = [spec.http_port for spec in SERVICES.values()]
    assert len(set(ports)) == len(ports) and DEFAULT_CONSOLE_HTTP_PORT not in ports


def test_a_service_reads_other_services_topics_and_every_topic_has_a_reader() -> None:
    for spec in SERVICES.values():
        assert spec.service not in spec.consumes and len(set(spec.consumes)) == len(spec.consumes)
    read = {topic for spec in SERVICES.values() for topic in spec.consumed_topics}
    assert read == set(TOPICS)


def test_no_two_services_share_a_group_a_principal_a_database_or_a_role() -> None:
    for fact in ("topic", "group_id", "kafka_principal", "database", "database_role", "module"):
        values = [getattr(spec, fact) for spec in SERVICES.values()]
        assert len(set(values)) == len(values), fact


@DECLARED
def test_the_settings_default_to_the_declared_port_and_its_url(
    spec: ServiceSpec, clean_environment: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    assert settings.http_port(spec.service) == spec.http_port
    assert settings.base_url(spec.service) == f"http://127.0.0.1:{spec.http_port}"
    assert settings.database_url(spec.service) is None


@DECLARED
def test_the_settings_read_each_services_own_variables(
    spec: ServiceSpec, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.setenv(spec.http_port_variable, "9999")
    clean_environment.setenv(spec.url_variable, "https://elsewhere.example/")
    clean_environment.setenv(spec.database_url_variable, "postgresql://u@h/db")
    settings = Settings()
    assert database_env_var(spec.service) == spec.database_url_variable
    for other in SERVICES.values():
        mine = other is spec
        assert (settings.http_port(other.service) == 9999) is mine
        assert (settings.base_url(other.service) == "https://elsewhere.example") is mine
        assert (settings.database_url(other.service) == "postgresql+psycopg://u@h/db") is mine


def test_the_supervisor_runs_one_process_per_declared_service(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    own = {Service.ORDER: {"KAFKA_SASL_USERNAME": "order"}}
    processes = service_processes(settings, {"SHARED": "1"}, tmp_path, own)
    assert list(processes) == list(SERVICES)
    for service, process in processes.items():
        spec = SERVICES[service]
        assert process.name == spec.module and (tmp_path / f"{spec.name}.log") == process.log_path
        assert process.base_url == f"http://127.0.0.1:{spec.http_port}"
        assert process.env == {"SHARED": "1", **own.get(service, {})}
        assert process.process is None  # built, not started


def test_the_python_clients_default_urls_are_the_declared_ports() -> None:
    assert [service.value for service in ClientService] == [spec.name for spec in SERVICES.values()]
    for spec in SERVICES.values():
        assert DEFAULT_URLS[ClientService(spec.name)] == f"http://127.0.0.1:{spec.http_port}"
