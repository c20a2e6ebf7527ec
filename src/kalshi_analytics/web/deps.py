"""Request dependencies: the per-request database session (committed at the boundary) and app state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from kalshi_analytics.db.reads import Reads

#: Every route but /metrics lives under this prefix (set on each router, so route templates are complete).
API_PREFIX = "/api/v1"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the endpoint returns, rolled back if it raises.

    Services and helpers never commit; this boundary does.
    """
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session, session.begin():
        yield session


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_read_session(request: Request) -> AsyncIterator[AsyncConnection]:
    """The unit of work of a read-only request: one pooled connection in autocommit mode (a read costs one
    round trip instead of BEGIN + query + COMMIT, and no ORM session machinery). Use :data:`SessionDep` for
    anything that writes."""
    engine: AsyncEngine = request.app.state.read_engine
    async with engine.connect() as conn:
        yield conn


@asynccontextmanager
async def reads(request: Request) -> AsyncIterator[Reads]:
    """A pooled asyncpg connection for the markets reads, taken only when a query must run (a cached answer
    needs none) — hence a context manager the endpoint opens, not a dependency."""
    pool: asyncpg.Pool = request.app.state.read_pool
    async with pool.acquire() as conn:
        yield Reads(conn)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncConnection, Depends(get_read_session)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
