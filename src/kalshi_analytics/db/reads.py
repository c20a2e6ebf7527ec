"""The API's read path: a plain asyncpg pool and :class:`Reads`, queries written with ``:name`` parameters.

Reads skip SQLAlchemy. Per query its async adapter cost ~0.3 ms of Python (greenlet hop, result proxies),
more than PostgreSQL needed for an index probe; asyncpg alone prepares each statement once per connection
and decodes rows in C. Writes keep going through SQLAlchemy units of work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import asyncpg

from kalshi_analytics.db.engine import CONNECT_TIMEOUT_SECONDS

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters → asyncpg's ``$n`` (a name used twice keeps one number); ``::type`` is left alone."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, sql), tuple(names)


class Reads:
    """Read-only queries on one connection (autocommit: one round trip per query, no BEGIN/COMMIT)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @staticmethod
    def _args(sql: str, params: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        text, names = positional(sql)
        params = params or {}
        return text, [params[n] for n in names]

    async def all(self, sql: str, params: Mapping[str, Any] | None = None) -> Sequence[asyncpg.Record]:
        text, args = self._args(sql, params)
        rows: list[asyncpg.Record] = await self._conn.fetch(text, *args)
        return rows

    async def first(self, sql: str, params: Mapping[str, Any] | None = None) -> asyncpg.Record | None:
        text, args = self._args(sql, params)
        row: asyncpg.Record | None = await self._conn.fetchrow(text, *args)
        return row

    async def one(self, sql: str, params: Mapping[str, Any] | None = None) -> asyncpg.Record:
        row = await self.first(sql, params)
        if row is None:
            raise LookupError("query returned no row")
        return row


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (a round trip per request): read connections never change
    session state — no transactions, LISTENs, advisory locks or SETs happen on them."""


async def create_read_pool(dsn: str, size: int) -> asyncpg.Pool:
    """A pool of up to ``size`` connections, opened on demand (one now, so a wrong URL fails here).

    No floor (``min_size=0``): asyncpg would otherwise keep reconnecting to restore it while the database is
    away, logging a traceback at every attempt; a request that finds no connection opens one."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=size,
        reset=_keep_session,
        timeout=CONNECT_TIMEOUT_SECONDS,
        server_settings={"application_name": "kalshi-analytics-api"},
    )
    try:
        async with pool.acquire():
            pass
    except BaseException:
        await pool.close()
        raise
    return pool
