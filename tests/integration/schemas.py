"""A private schema in a service's database, with its migrations applied, for tests that share a server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Service
from common.db import create_engine
from saga_tools import migrations


@dataclass
class Db:
    engine: AsyncEngine
    schema: str


@asynccontextmanager
async def order_schema(base_url: str) -> AsyncIterator[Db]:
    async with service_schema(Service.ORDER, base_url) as db:
        yield db


@asynccontextmanager
async def service_schema(service: Service, base_url: str) -> AsyncIterator[Db]:
    """A fresh schema (dropped afterwards) and an engine whose connections use it."""
    schema = f"test_{uuid.uuid4().hex[:8]}"
    plain = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{base_url}{'&' if '?' in base_url else '?'}options={quote(f'-csearch_path={schema}')}"
    await asyncio.to_thread(migrations.upgrade, service, url)
    engine = create_engine(url, pool_size=4)
    try:
        yield Db(engine, schema)
    finally:
        await engine.dispose()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
