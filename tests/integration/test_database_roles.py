"""Each service's role reaches its own database only, with its own password (a real local PostgreSQL).

One server for the module: started by the project's own code, payment's database migrated as payment's
role. Then order's role tries to get at payment's data every way it could.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from sqlalchemy import create_engine, text

from common.config import Service
from saga_tools import migrations
from saga_tools.local_stack.postgres import PostgresServer


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("roles"))
    server.start()
    try:
        migrations.upgrade(Service.PAYMENT, server.database_url(Service.PAYMENT))
        yield server
    finally:
        server.stop()


def _as(server: PostgresServer, role: str, database: str, password: str, *, tcp: bool = False) -> str:
    """A conninfo with the password written out (no password file): what an attacker would try."""
    host = "127.0.0.1" if tcp else str(server.socket_dir)
    return make_conninfo(
        host=host, port=server.port, user=role, dbname=database, password=password, connect_timeout=5
    )


def test_a_service_migrates_its_database_as_its_own_role_and_owns_every_table(server: PostgresServer) -> None:
    engine = create_engine(server.database_url(Service.PAYMENT))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == "payment"
            owners = conn.execute(
                text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
            ).all()
            tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar()
    finally:
        engine.dispose()
    assert owners == [("payment",)] and tables and tables > 3
    assert migrations.current_revision(Service.PAYMENT, server.database_url(Service.PAYMENT)) is not None


@pytest.mark.parametrize("tcp", [False, True], ids=["socket", "tcp"])
@pytest.mark.parametrize("database", ["payment", "delivery", "postgres", "template1"])
def test_orders_role_cannot_connect_to_any_database_but_its_own(
    server: PostgresServer, database: str, tcp: bool
) -> None:
    order_password = server.passwords()["order"]
    with pytest.raises(psycopg.OperationalError, match=f'permission denied for database "{database}"'):
        psycopg.connect(_as(server, "order", database, order_password, tcp=tcp))
    with psycopg.connect(_as(server, "order", "order", order_password, tcp=tcp)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("order",)


def test_let_into_payments_database_by_mistake_orders_role_still_cannot_read_its_tables(
    server: PostgresServer,
) -> None:
    """Defence in depth: payment's tables grant nothing to other roles, whatever the database allows."""
    with psycopg.connect(server.admin_conninfo(), autocommit=True) as admin:
        admin.execute('GRANT CONNECT ON DATABASE payment TO "order"')
    try:
        with psycopg.connect(_as(server, "order", "payment", server.passwords()["order"])) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table"):
                conn.execute("SELECT * FROM payments")
            conn.rollback()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM payments")
    finally:
        with psycopg.connect(server.admin_conninfo(), autocommit=True) as admin:
            admin.execute('REVOKE CONNECT ON DATABASE payment FROM "order"')


@pytest.mark.parametrize("tcp", [False, True], ids=["socket", "tcp"])
def test_a_wrong_or_missing_password_is_refused(server: PostgresServer, tcp: bool) -> None:
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "payment"'):
        psycopg.connect(_as(server, "payment", "payment", "not-the-password", tcp=tcp))
    # Another service's password is a wrong password too.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_as(server, "payment", "payment", server.passwords()["order"], tcp=tcp))
    with pytest.raises(
        psycopg.OperationalError, match=r"no password supplied|password authentication failed"
    ):
        psycopg.connect(_as(server, "payment", "payment", "", tcp=tcp) + " passfile=/nonexistent")


def test_the_superuser_is_reachable_only_by_the_stack_through_the_socket(server: PostgresServer) -> None:
    with psycopg.connect(server.admin_conninfo()) as admin:
        assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
            True,
        )
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
        psycopg.connect(_as(server, "postgres", "postgres", "", tcp=True))


def test_passwords_are_stored_as_scram_verifiers_and_kept_in_a_private_file(server: PostgresServer) -> None:
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    with psycopg.connect(server.admin_conninfo()) as admin:
        stored = dict(
            admin.execute(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('payment', 'order', 'delivery')"
            ).fetchall()
        )
        methods = {row[0] for row in admin.execute("SELECT auth_method FROM pg_hba_file_rules").fetchall()}
        encryption = admin.execute("SHOW password_encryption").fetchone()
    assert set(stored) == {"payment", "order", "delivery"}
    assert all(verifier.startswith("SCRAM-SHA-256$4096:") for verifier in stored.values())
    assert not any(
        password in verifier
        for password, verifier in zip(server.passwords().values(), stored.values(), strict=True)
    )
    assert methods == {"peer", "scram-sha-256", "reject"} and encryption == ("scram-sha-256",)
    for service in Service:
        assert server.passwords()[service.value] not in server.database_url(service)
    assert not any(password in server.log_path.read_text() for password in server.passwords().values())


def test_a_lost_password_file_means_new_passwords_at_the_next_start(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path)
    server.start()
    try:
        before = server.passwords()
        server.stop()
        server.password_file.unlink()
        server.start()
        after = server.passwords()
        with psycopg.connect(_plain(server.database_url(Service.DELIVERY))) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("delivery",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_as(server, "delivery", "delivery", before["delivery"]))
    finally:
        server.stop()
    assert before["delivery"] != after["delivery"]
