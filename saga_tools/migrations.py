"""Running the three Alembic histories, from `env.py` and from the CLI.

Migrations use a synchronous psycopg 3 connection: Alembic is synchronous, and the same URL spelling
(`postgresql+psycopg://`) serves both the async services and these scripts.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, pool

from common.config import (
    MissingDatabaseUrl,
    Service,
    database_env_var,
    load_settings,
    normalise_database_url,
)
from common.db import hide_values_in_errors

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "migrations" / "alembic.ini"


def alembic_config(service: Service, url: str) -> Config:
    config = Config(str(ALEMBIC_INI), ini_section=service.value)
    # configparser treats % as interpolation: escape it (passwords may contain it).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(service: Service, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, url), revision)


def downgrade(service: Service, url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(service, url), revision)


def current_revision(service: Service, url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = _engine(normalise_database_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def _engine(url: str) -> Engine:
    """A one-connection engine whose errors carry no value (common/db.py)."""
    engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
    hide_values_in_errors(engine)
    return engine


def _url_for_running_environment() -> str:
    config = context.config
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return normalise_database_url(url)
    service = Service(config.get_main_option("service") or config.config_ini_section)
    from_env = load_settings().database_url(service)
    if not from_env:
        raise MissingDatabaseUrl(
            f"no database URL for {service.value}: set {database_env_var(service)} or pass -x url=..."
        )
    return from_env


def run_environment(metadata: MetaData) -> None:
    """Body of every env.py: run the selected history online against its own database."""
    if context.is_offline_mode():
        context.configure(url=_url_for_running_environment(), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = _engine(_url_for_running_environment())
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
