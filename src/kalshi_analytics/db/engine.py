"""Database access: URLs, the async engine (built at start-up, never at import) and units of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kalshi_analytics.errors import UnavailableError
from kalshi_analytics.logs import mask_url

CONNECT_TIMEOUT_SECONDS = 5.0


class DatabaseUnavailableError(UnavailableError):
    """The database could not be reached; the message names the (masked) URL and the reason."""


def async_url(url: str | URL) -> URL:
    """Normalise any PostgreSQL URL (``postgres://``, ``postgresql://``, …) to the asyncpg driver."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+asyncpg")


def libpq_url(url: str | URL) -> str:
    """The same URL in plain ``postgresql://`` form (for asyncpg.connect, psql and people)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def display_url(url: str | URL) -> str:
    """A URL safe to print: the password replaced with ``***``."""
    parsed = make_url(url) if isinstance(url, str) else url
    shown = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return mask_url(unquote(shown))


def create_engine(url: str | URL, *, pool_size: int = 10, echo: bool = False, pre_ping: bool = True) -> AsyncEngine:
    """``pre_ping=False`` saves a round trip per checkout (the API's hot path); a connection found dead on use
    still invalidates the whole pool, so only the requests in flight during a database restart fail."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        echo=echo,
        connect_args={
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "server_settings": {"application_name": "kalshi-analytics"},
        },
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session per unit of work, committed here at the boundary (helpers never commit) or rolled back."""
    async with sessions() as session, session.begin():
        yield session


async def driver_in_transaction(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside the transaction ``conn.begin()`` stands for.

    SQLAlchemy opens that transaction lazily, with its first statement: raw asyncpg calls made before it would
    each commit on their own. One statement through SQLAlchemy first makes them join it.
    """
    await conn.exec_driver_sql("SELECT 1")
    return (await conn.get_raw_connection()).driver_connection


@dataclass(frozen=True)
class ServerInfo:
    url: str
    version: str
    database: str


async def check_connection(engine: AsyncEngine, limit_seconds: float = 8.0) -> ServerInfo:
    """Connect once and read the server version; raise :class:`DatabaseUnavailableError` within ``limit_seconds``."""
    try:
        async with asyncio.timeout(limit_seconds), engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    except Exception as exc:  # any driver/OS error means "not reachable", and says why
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {limit_seconds:.0f} s"
        raise DatabaseUnavailableError(f"cannot connect to {display_url(engine.url)}: {reason}") from None
    return ServerInfo(url=display_url(engine.url), version=str(version), database=str(database))
