"""Request dependencies: the per-request database session (committed at the boundary) and app state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kalshi_analytics.config import Settings

#: Every route but /metrics lives under this prefix (set on each router, so route templates are complete).
API_PREFIX = "/api/v1"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the endpoint returns, rolled back if it raises.

    Services and helpers never commit; this boundary does.
    """
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session, session.begin():
        yield session


async def get_settings(request: Request) -> Settings:  # async: a sync dependency would cost a thread hop
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for read-only requests: its connection is in autocommit mode, so a read costs one round trip
    instead of BEGIN + query + COMMIT. Use :data:`SessionDep` for anything that writes."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.read_sessions
    async with sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
