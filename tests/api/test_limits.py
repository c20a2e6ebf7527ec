"""Every resource has a limit, and hitting it is the documented 4xx/503 problem with ``Retry-After`` where a retry
can help: request bodies (413, before more is read), rate limits before the body is read (429), concurrent SSE
streams per client (429) and in total (503), the backtest queue (503)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from kalshi_analytics.api.app import create_app
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.web.server import proxy_options
from tests.conftest import create_migrated_database, drop_database, wait_until
from tests.fixtures.app import assert_problem, make_settings, market, serve, ticker, write

KB = 1024


def backtest(**kw: Any) -> dict[str, Any]:
    return {
        "strategy": "buy_and_hold",
        "params": {"size": 1},
        "start": "2026-03-01T00:00:00Z",
        "end": "2026-03-02T00:00:00Z",
        "market_filter": {"tickers": ["KXLIMIT-1"]},
        "keep_empty": True,  # no such market: queued all the same
    } | kw


class Body:
    """A request body streamed in chunks, counting how many chunks the server pulled."""

    def __init__(self, chunk: bytes, chunks: int) -> None:
        self.chunk, self.chunks, self.pulled = chunk, chunks, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield self.chunk


# ---------------------------------------------------------------------------------------------- body size
async def test_a_body_declared_too_large_is_413_before_any_of_it_is_read(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(api_max_body_bytes=64 * KB, api_backtest_worker=False)
    body = Body(b"x" * (1024 * KB), 100)  # 100 MB
    async with serve(app) as client:
        r = await client.post(
            "/api/v1/backtests",
            content=body,
            headers={"Content-Type": "application/json", "Content-Length": str(100 * 1024 * KB)},
        )
    problem = assert_problem(r, 413)
    assert "65536" in problem["detail"]
    assert body.pulled == 0


async def test_a_streamed_body_is_cut_off_once_it_passes_the_limit(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(api_max_body_bytes=64 * KB, api_backtest_worker=False)
    body = Body(b" " * (16 * KB), 6400)  # 100 MB of blanks, chunked: no Content-Length
    async with serve(app) as client:
        r = await client.post("/api/v1/backtests", content=body, headers={"Content-Type": "application/json"})
    assert_problem(r, 413)
    assert body.pulled <= 64 // 16 + 1


async def test_a_30_mb_market_filter_is_refused_and_a_body_within_the_limit_is_read(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(api_backtest_worker=False)  # the default limit, 64 kB
    huge = backtest(market_filter={"tickers": ["KXLIMIT-" + "X" * 1000] * 30_000})
    async with serve(app) as client:
        assert_problem(await client.post("/api/v1/backtests", json=huge), 413)
        padded = json.dumps(backtest()) + " " * (60 * KB)  # valid JSON just under the limit
        r = await client.post("/api/v1/backtests", content=padded, headers={"Content-Type": "application/json"})
        assert r.status_code == 202, r.text
        async with client.stream("POST", "/api/v1/backtests", content=Body(b"{", 1)) as r:
            assert r.status_code == 422  # small bodies still reach validation


async def test_the_body_limit_over_a_real_socket(database_url: str) -> None:
    app = create_app(make_settings(database_url, api_backtest_worker=False), database_url=database_url)
    async with live(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        big = json.dumps(backtest(market_filter={"tickers": ["KXLIMIT-" + "X" * 1000] * 20_000}))  # 20 MB
        r = await client.post("/api/v1/backtests", content=big, headers={"Content-Type": "application/json"})
        assert_problem(r, 413)
        assert (await client.get("/api/v1/health")).status_code == 200  # the connection is still usable


# ------------------------------------------------------------------------------------ rate limit before body
async def test_a_client_over_its_limit_is_refused_before_its_body_is_read(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(api_rate_limit_enabled=True, api_rate_expensive="1/minute", api_backtest_worker=False)
    async with serve(app) as client:
        # Charged once (not once before the body and again by the route's dependency): this one passes.
        assert (await client.post("/api/v1/backtests", json=backtest())).status_code == 202
        body = Body(b" " * (4 * KB), 15)  # 60 kB, within the body limit
        r = await client.post("/api/v1/backtests", content=body, headers={"Content-Type": "application/json"})
        assert_problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert body.pulled == 0


# ------------------------------------------------------------------------------------------------- streams
@pytest.fixture
async def streaming_app(database_url: str) -> AsyncIterator[tuple[FastAPI, str, str]]:
    """A real server trusting X-Forwarded-For from loopback (so a test can be several clients), 2 streams per
    client and 3 in all."""
    settings = make_settings(
        database_url,
        api_streams_per_client=2,
        api_streams_total=3,
        api_stream_heartbeat_seconds=0.2,
        forwarded_allow_ips=["127.0.0.1"],
        api_backtest_worker=False,
    )
    app = create_app(settings, database_url=database_url)
    t = ticker("KXSTREAMLIM")
    engine = create_engine(database_url, pool_size=1)
    try:
        await write(engine, market(t))
    finally:
        await engine.dispose()
    async with live(app, **proxy_options(settings)) as base:
        yield app, base, t


async def _open(stack: AsyncExitStack, client: httpx.AsyncClient, t: str, who: str) -> httpx.Response:
    r = await stack.enter_async_context(
        client.stream("GET", "/api/v1/stream", params={"tickers": t}, headers={"X-Forwarded-For": who})
    )
    if r.status_code == 200:
        lines = r.aiter_lines()
        stack.push_async_callback(lines.aclose)  # held until the stack closes (dropped, it would end the stream)
        await anext(lines)  # the stream is open
    else:
        await r.aread()
    return r


async def test_concurrent_streams_are_limited_per_client_and_in_total(
    streaming_app: tuple[FastAPI, str, str],
) -> None:
    app, base, t = streaming_app
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        a = AsyncExitStack()
        async with a:
            assert (await _open(a, client, t, "10.0.0.1")).status_code == 200
            assert (await _open(a, client, t, "10.0.0.1")).status_code == 200
            r = await _open(a, client, t, "10.0.0.1")
            problem = assert_problem(r, 429)
            assert "2 concurrent streams" in problem["detail"]
            assert int(r.headers["retry-after"]) >= 1
            async with AsyncExitStack() as b:
                assert (await _open(b, client, t, "10.0.0.2")).status_code == 200
                r = await _open(b, client, t, "10.0.0.3")  # 3 streams open in all
                assert_problem(r, 503)
                assert int(r.headers["retry-after"]) >= 1
        # Closed streams give their places back (once the server has seen them go).
        streams = app.state.streams
        await wait_until(lambda: streams.open.total() == 0, "the closed streams to be released")
        metrics = (await client.get("/metrics")).text
        assert "kalshi_api_streams_open 0.0" in metrics
        async with AsyncExitStack() as c:
            for who in ("10.0.0.1", "10.0.0.1", "10.0.0.3"):
                assert (await _open(c, client, t, who)).status_code == 200


# --------------------------------------------------------------------------------------------- backtest queue
@pytest.fixture
async def own_database(server_url: str) -> AsyncIterator[str]:
    """A database of this test's own: the queue bound counts every queued row."""
    url = await create_migrated_database(server_url)
    yield url
    await drop_database(server_url, url)


async def test_the_backtest_queue_is_bounded_even_under_concurrent_creates(own_database: str) -> None:
    app = create_app(
        make_settings(own_database, api_backtest_worker=False, api_backtest_queue_max=5), database_url=own_database
    )
    async with serve(app) as client:
        answers = await asyncio.gather(*(client.post("/api/v1/backtests", json=backtest()) for _ in range(40)))
    assert sorted(r.status_code for r in answers) == [202] * 5 + [503] * 35
    refused = [r for r in answers if r.status_code == 503]
    for r in refused:
        problem = assert_problem(r, 503)
        assert "queue is full" in problem["detail"]
        assert int(r.headers["retry-after"]) >= 1
    engine = create_engine(own_database, pool_size=1)
    try:
        async with engine.connect() as conn:
            queued = (await conn.execute(text("SELECT count(*) FROM backtest_results"))).scalar_one()
    finally:
        await engine.dispose()
    assert queued == 5


# ----------------------------------------------------------------------------------------------- helpers
class live:
    """The app under a real uvicorn on 127.0.0.1 (lifespan included); yields its base URL."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, **options)
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        await wait_until(lambda: self.server.started, "the API server to start")
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


async def test_a_stream_sent_a_body_over_the_limit_just_ends(streaming_app: tuple[FastAPI, str, str]) -> None:
    app, base, t = streaming_app
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"GET /api/v1/stream?tickers={t} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 kB chunks
        for _ in range(6):  # 96 kB, over the 64 kB limit
            writer.write(chunk)
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(1 << 20), 10)
        while not rest.endswith(b"0\r\n\r\n"):  # the last chunk: the stream ended cleanly
            more = await asyncio.wait_for(reader.read(1 << 20), 10)
            assert more, rest[-200:]
            rest += more
    finally:
        writer.close()
    await wait_until(lambda: app.state.streams.open.total() == 0, "the stream to be released")
