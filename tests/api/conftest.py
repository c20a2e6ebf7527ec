"""API test fixtures: the real app (lifespan and all) over httpx's ASGI transport, on the session database.

Data goes in through the recorder's own write path, the :class:`Sink` (it commits, so tests keep apart by
unique tickers rather than by rollback).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import create_app
from kalshi_analytics.config import Settings
from kalshi_analytics.recorder.rows import MarketRow, SinkItem
from kalshi_analytics.recorder.sink import Sink

ALLOWED_ORIGIN = "http://dashboard.example"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "db_url": database_url,
        "cors_origins": [ALLOWED_ORIGIN],
        "api_rate_limit_enabled": False,
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


async def write(engine: AsyncEngine, *items: SinkItem) -> None:
    """Write through the recorder's sink and wait for the commit."""
    async with Sink(engine, batch_max_seconds=0.01) as sink:
        for item in items:
            await sink.put(item)
        await sink.flush()


def ticker(prefix: str = "KXAPI") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def market(t: str, **kw: Any) -> MarketRow:
    base: dict[str, Any] = {
        "ticker": t,
        "event_ticker": kw.pop("event_ticker", f"EV-{t}"),
        "series_ticker": kw.pop("series_ticker", "KXAPI"),
        "title": kw.pop("title", f"Will {t} happen?"),
        "status": kw.pop("status", "active"),
    }
    base.update(kw)
    return MarketRow(**base)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind an httpx client (ASGI transport, no sockets)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def app_factory(database_url: str, engine: AsyncEngine) -> Callable[..., FastAPI]:
    def build(**overrides: Any) -> FastAPI:
        return create_app(make_settings(database_url, **overrides), engine=engine)

    return build


@pytest.fixture
async def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    return app_factory()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as c:
        yield c
