"""Each service's Alembic history goes up to head and back down, against its own database.

Every run uses a fresh schema inside the service's database (selected with search_path), so it never
disturbs the tables that the end-to-end services are using in the same session.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from alembic.script import ScriptDirectory

from common.config import Service
from delivery.models import metadata as delivery_metadata
from order.models import metadata as order_metadata
from payment.models import metadata as payment_metadata
from saga_tools import migrations

TABLES = {
    Service.PAYMENT: set(payment_metadata.tables),
    Service.ORDER: set(order_metadata.tables),
    Service.DELIVERY: set(delivery_metadata.tables),
}


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(_plain(url)) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
    return {row[0] for row in rows}


@pytest.fixture(params=list(Service), ids=lambda s: s.value)
def isolated(
    request: pytest.FixtureRequest, database_urls: dict[str, str]
) -> Iterator[tuple[Service, str, str]]:
    service: Service = request.param
    base = database_urls[service.value]
    schema = f"migtest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_plain(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    yield service, url, schema
    with psycopg.connect(_plain(base), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_migrations_create_every_table_and_downgrade_removes_them(isolated: tuple[Service, str, str]) -> None:
    service, url, schema = isolated

    migrations.upgrade(service, url)
    assert _tables(url, schema) == TABLES[service] | {"alembic_version"}
    head = ScriptDirectory.from_config(migrations.alembic_config(service, url)).get_current_head()
    assert migrations.current_revision(service, url) == head

    migrations.downgrade(service, url)
    assert _tables(url, schema) == {"alembic_version"}
    assert migrations.current_revision(service, url) is None

    migrations.upgrade(service, url)
    assert TABLES[service] <= _tables(url, schema)


def test_one_history_runs_alone_with_the_alembic_command_line(isolated: tuple[Service, str, str]) -> None:
    service, url, schema = isolated
    command = [
        sys.executable,
        "-m",
        "alembic",
        "-c",
        "migrations/alembic.ini",
        "-n",
        service.value,
        "-x",
        f"url={url}",
    ]

    subprocess.run([*command, "upgrade", "head"], check=True, capture_output=True)
    assert TABLES[service] <= _tables(url, schema)
    subprocess.run([*command, "downgrade", "base"], check=True, capture_output=True)
    assert _tables(url, schema) == {"alembic_version"}


def test_models_and_migrations_agree(isolated: tuple[Service, str, str]) -> None:
    """Autogenerate finds nothing to do after upgrading: the first revision matches the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    service, url, _schema = isolated
    migrations.upgrade(service, url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(
                MigrationContext.configure(conn),
                {
                    Service.PAYMENT: payment_metadata,
                    Service.ORDER: order_metadata,
                    Service.DELIVERY: delivery_metadata,
                }[service],
            )
    finally:
        engine.dispose()
    assert differences == []
