"""Settings come from the environment with working local defaults."""

from __future__ import annotations

import pytest

from common.config import Service, Settings, database_env_var, normalise_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5/db", "postgresql+psycopg://u@h:5/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_urls_use_the_psycopg3_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_each_service_reads_its_own_database_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in Service:
        monkeypatch.setenv(database_env_var(service), f"postgresql://u@h/{service.value}")
    settings = Settings()
    for service in Service:
        assert settings.database_url(service) == f"postgresql+psycopg://u@h/{service.value}"


def test_base_urls_default_to_the_local_ports_and_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_HTTP_PORT", "9002")
    monkeypatch.setenv("PAYMENT_URL", "https://pay.example/")
    settings = Settings()
    assert settings.base_url(Service.ORDER) == "http://127.0.0.1:9002"
    assert settings.base_url(Service.PAYMENT) == "https://pay.example"
