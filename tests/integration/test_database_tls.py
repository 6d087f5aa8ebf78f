"""The local PostgreSQL with TLS (SAGA_POSTGRES_TLS): services verify the server, plain TCP is refused.

What holds for any deployment: a `*_DATABASE_URL` with `sslmode=verify-full&sslrootcert=…` works against
a TLS server whose certificate names the host, and fails against one signed by another CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from sqlalchemy import create_engine, text

from common.config import Service, Settings, database_env_var
from saga_tools import migrations
from saga_tools.local_stack.pg_tls import ensure_server_tls
from saga_tools.local_stack.postgres import PostgresServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("tls"), tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_stacks_urls_verify_the_server_and_a_service_migrates_and_works_over_tls(
    server: PostgresServer,
) -> None:
    url = server.database_url(Service.ORDER)
    assert "sslmode=verify-full" in url and "sslrootcert=" in url
    migrations.upgrade(Service.ORDER, url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ssl = conn.execute(
                text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).one()
            user = conn.execute(text("SELECT current_user")).scalar()
    finally:
        engine.dispose()
    assert ssl[0] is True and ssl[1].startswith("TLS")
    assert user == "order"


def test_a_database_url_of_your_own_with_verify_full_works_as_a_setting(server: PostgresServer) -> None:
    assert server.tls is not None
    password = server.passwords()["payment"]
    given = (
        f"postgresql://payment:{password}@127.0.0.1:{server.port}/payment"
        f"?sslmode=verify-full&sslrootcert={quote(str(server.tls.ca_file.resolve()))}"
    )
    url = Settings.model_validate({database_env_var(Service.PAYMENT): given}).database_url(Service.PAYMENT)
    assert url is not None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
    finally:
        engine.dispose()


def test_plain_tcp_is_refused_and_a_server_signed_by_another_ca_is_not_trusted(
    server: PostgresServer, tmp_path: Path
) -> None:
    base = {"host": "localhost", "port": server.port, "user": "payment", "dbname": "payment"}
    base |= {"password": server.passwords()["payment"], "connect_timeout": 5}
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(make_conninfo(**base, sslmode="disable"))
    other_ca = ensure_server_tls(tmp_path / "other").ca_file
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(make_conninfo(**base, sslmode="verify-full", sslrootcert=str(other_ca)))
