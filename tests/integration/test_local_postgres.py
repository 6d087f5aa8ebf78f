"""The project's own PostgreSQL: a real server, one database and role per service."""

from __future__ import annotations

from pathlib import Path

import psycopg

from common.config import Service
from saga_tools.local_stack.postgres import PostgresServer


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_each_service_connects_as_its_own_role_to_the_database_it_owns(database_urls: dict[str, str]) -> None:
    for service in Service:
        with psycopg.connect(_plain(database_urls[service.value])) as conn:
            version = conn.execute("SELECT version()").fetchone()
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            ).fetchone()
            user = conn.execute("SELECT current_user").fetchone()
        assert version is not None and version[0].startswith("PostgreSQL")
        assert owner == user == (service.value,)


def test_committed_data_survives_a_restart_and_a_crash(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path)
    server.start()
    try:
        url = _plain(server.database_url(Service.ORDER))
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE kept (value int)")
            conn.execute("INSERT INTO kept VALUES (1)")

        server.restart()
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO kept VALUES (2)")

        server.kill()
        server.start()
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT value FROM kept ORDER BY value").fetchall()
    finally:
        server.stop()
    assert rows == [(1,), (2,)]


def test_a_second_start_reuses_the_data_directory(tmp_path: Path) -> None:
    first = PostgresServer(tmp_path)
    first.start()
    first.stop()
    marker = (tmp_path / "data" / "PG_VERSION").stat().st_mtime

    second = PostgresServer(tmp_path)
    second.start()
    second.stop()

    assert (tmp_path / "data" / "PG_VERSION").stat().st_mtime == marker
