"""Shared benchmark plumbing: a fresh, migrated database on the embedded server or BENCH_DATABASE_URL."""

from __future__ import annotations

import os
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url, text

from kalshi_analytics import migrate
from kalshi_analytics.db import create_engine
from kalshi_analytics.embedded import start_embedded


def server_url() -> str:
    """BENCH_DATABASE_URL if set, else an embedded server in a temporary directory."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return url
    pgdata = Path(tempfile.gettempdir()) / "kalshi-analytics-bench-pgdata"
    return start_embedded(pgdata, database="postgres").url


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    server = server_url()
    name = f"ka_bench_{uuid.uuid4().hex[:10]}"
    url = await _create_migrated(server, name)
    try:
        yield url
    finally:
        admin = create_engine(server, pool_size=1)
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def kept_database(name: str) -> tuple[str, bool]:
    """``(url, created)``: the database ``name`` on the bench server, created and migrated if missing, and
    never dropped — so a slow bulk load can be reused by later runs (``--keep-database``)."""
    server = server_url()
    admin = create_engine(server, pool_size=1)
    async with admin.connect() as conn:
        exists = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).first()
    await admin.dispose()
    if exists:
        return make_url(server).set(database=name).render_as_string(hide_password=False), False
    return await _create_migrated(server, name), True


async def _create_migrated(server: str, name: str) -> str:
    admin = create_engine(server, pool_size=1)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=1)
    await migrate.upgrade(engine)
    await engine.dispose()
    return url


def median(xs: list[float]) -> float:
    return statistics.median(xs)
