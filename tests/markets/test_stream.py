"""The SSE stream end to end: a real uvicorn on 127.0.0.1, a snapshot written through the Sink, the update received."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import SnapshotRow
from tests.conftest import wait_until
from tests.fixtures.app import market, ticker, write

D = Decimal


@pytest.fixture
async def live_app(app_factory: Callable[..., FastAPI]) -> AsyncIterator[tuple[FastAPI, str]]:
    app = app_factory(api_stream_heartbeat_seconds=0.3)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, "the API server to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        await asyncio.wait_for(app.state.stream_hub.listening.wait(), 10)
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs; comments come through as ("comment", text)."""
    event, data = "message", []
    async for line in lines:
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield event, "\n".join(data)
            event, data = "message", []


async def test_stream_pushes_sink_writes_and_cleans_up(live_app: tuple[FastAPI, str], engine: AsyncEngine) -> None:
    app, base = live_app
    hub = app.state.stream_hub
    wanted, other = ticker(), ticker()
    await write(engine, market(wanted), market(other))
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        client.stream("GET", "/api/v1/stream", params={"tickers": f"{wanted},NOT-THERE"}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.aiter_lines())
        assert await anext(events) == ("comment", "connected")
        assert hub.subscribers == 1
        ts = datetime.now(UTC).replace(microsecond=0)
        await write(
            engine,
            SnapshotRow(ticker=other, ts=ts, source="websocket", received_at=ts, yes_bid=D("0.1")),
            SnapshotRow(ticker=wanted, ts=ts, source="websocket", received_at=ts, yes_bid=D("0.61"), yes_ask=D("0.63")),
        )
        got = None
        heartbeats = 0
        async with asyncio.timeout(10):
            async for kind, data in events:
                if kind == "comment":
                    heartbeats += 1
                    continue
                got = json.loads(data)
                break
        assert kind == "snapshot"
        assert got is not None
        assert got["ticker"] == wanted  # never the ticker we did not ask for
        assert got["implied_probability"] == "0.6200"
        assert got["implied_probability_source"] == "mid"
        # Heartbeat comments keep idle connections alive.
        async with asyncio.timeout(5):
            async for kind, _ in events:
                if kind == "comment":
                    break
    # The client went away: its subscription is gone.
    await wait_until(lambda: hub.subscribers == 0, "the subscription to go with its client", seconds=5)


async def test_stream_validates_tickers(live_app: tuple[FastAPI, str]) -> None:
    _, base = live_app
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        r = await client.get("/api/v1/stream", params={"tickers": " , "})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "query.tickers"
        r = await client.get("/api/v1/stream")
        assert r.status_code == 422
