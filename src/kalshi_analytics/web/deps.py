"""Request dependencies: the per-request database session (committed at the boundary) and app state.

Each one asks the app's :class:`~kalshi_analytics.db.outage.DatabaseGate` first: while the database is known to
be unreachable a request is refused at once (503) instead of waiting for a connection, and a failure that
shows the database gone is reported to it and answered as a 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from kalshi_analytics.db.outage import DatabaseGate
from kalshi_analytics.db.reads import Reads

#: Every route but /metrics lives under this prefix (set on each router, so route templates are complete).
API_PREFIX = "/api/v1"


def _gate(request: Request) -> DatabaseGate | None:
    gate: DatabaseGate | None = getattr(request.app.state, "database_gate", None)
    if gate is not None:
        gate.check()
    return gate


@asynccontextmanager
async def _database(request: Request) -> AsyncIterator[None]:
    """Refused at once while the database is away; a failure inside that shows it gone becomes a 503."""
    gate = _gate(request)
    try:
        yield
    except Exception as exc:
        unavailable = gate.failed(exc) if gate is not None else None
        if unavailable is None:
            raise
        raise unavailable from exc


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the endpoint returns, rolled back if it raises.

    Services and helpers never commit; this boundary does.
    """
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with _database(request), sessions() as session, session.begin():
        yield session


async def get_engine(request: Request) -> AsyncEngine:
    """The engine, for services that open their own units of work (their driver errors reach the handler)."""
    _gate(request)
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_read_session(request: Request) -> AsyncIterator[AsyncConnection]:
    """The unit of work of a read-only request: one pooled connection in autocommit mode (a read costs one
    round trip instead of BEGIN + query + COMMIT, and no ORM session machinery). Use :data:`SessionDep` for
    anything that writes."""
    engine: AsyncEngine = request.app.state.read_engine
    async with _database(request), engine.connect() as conn:
        yield conn


@asynccontextmanager
async def reads(request: Request) -> AsyncIterator[Reads]:
    """A pooled asyncpg connection for the markets reads, taken only when a query must run (a cached answer
    needs none) — hence a context manager the endpoint opens, not a dependency. It is the replica's when
    ``DB_READ_URL`` is set (:mod:`kalshi_analytics.api.app`); everything else here uses the primary."""
    pool: asyncpg.Pool = request.app.state.read_pool
    async with _database(request), pool.acquire() as conn:
        yield Reads(conn)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncConnection, Depends(get_read_session)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
