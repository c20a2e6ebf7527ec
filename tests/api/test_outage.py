"""A database outage under load: 503 problems with Retry-After, never a 500 or a dropped connection, one log line
when it starts and one when it ends, and full service within 2 s of the database's return.

A private PostgreSQL (never the machine's) is stopped for 15 s while a few keep-alive clients on loopback keep
asking the DB-backed routes of a real uvicorn server.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn

from kalshi_analytics.api.app import create_app
from kalshi_analytics.db.embedded import start_embedded, stop_embedded
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.recorder.rows import SnapshotRow, TradeRow
from tests.conftest import wait_until
from tests.fixtures.app import make_settings, market, ticker, write

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("restore_logging")]

OUTAGE_SECONDS = 15.0
CLIENTS = 6
D = Decimal


@dataclass
class Answer:
    at: float
    route: str
    fresh: bool  # sent with Cache-Control: no-cache (the cache may not answer it)
    status: int | None  # None: no HTTP answer (reset, disconnect, timeout)
    error: str = ""
    retry_after: str | None = None
    x_cache: str | None = None
    problem: bool = False


async def _seed(url: str) -> tuple[str, datetime]:
    engine = create_engine(url, pool_size=2)
    t = ticker("KXOUT")
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    try:
        snaps = [
            SnapshotRow(t, t0 + timedelta(seconds=30 * i), "websocket", t0, yes_bid=D("0.40"), yes_ask=D("0.42"))
            for i in range(50)
        ]
        trades = [
            TradeRow(f"out-{t}-{i}", t, t0 + timedelta(seconds=40 * i), t0, D("0.41"), D("0.59"), D(1), "yes")
            for i in range(20)
        ]
        await write(engine, market(t), *snaps, *trades)
    finally:
        await engine.dispose()
    return t, t0


def _routes(t: str, t0: datetime) -> list[str]:
    window = f"start={t0.isoformat().replace('+00:00', 'Z')}&end={(t0 + timedelta(hours=1)).isoformat()[:19]}Z"
    return [
        "/api/v1/markets?limit=10",
        f"/api/v1/markets/{t}/latest",
        f"/api/v1/markets/{t}/history?{window}&limit=20",
        f"/api/v1/markets/{t}/history?{window}&interval=1m",
        f"/api/v1/markets/{t}/trades?limit=10",
        "/api/v1/backtests?limit=10",
    ]


async def _client(base: str, routes: list[str], n: int, answers: list[Answer], stop: asyncio.Event) -> None:
    """One keep-alive connection asking every route in turn; every other round skips the response cache."""
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=httpx.Limits(max_connections=1)) as client:
        i = n
        while not stop.is_set():
            route = routes[i % len(routes)]
            fresh = (i // len(routes)) % 2 == 0
            headers = {"Cache-Control": "no-cache"} if fresh else {}
            at = time.monotonic()
            try:
                r = await client.get(route, headers=headers)
            except httpx.TransportError as exc:
                answers.append(Answer(at, route, fresh, None, error=f"{type(exc).__name__}: {exc}"))
            else:
                answers.append(
                    Answer(
                        at,
                        route,
                        fresh,
                        r.status_code,
                        retry_after=r.headers.get("retry-after"),
                        x_cache=r.headers.get("x-cache"),
                        problem=r.headers.get("content-type", "").startswith("application/problem+json"),
                    )
                )
            i += 1
            await asyncio.sleep(0.01)


async def test_database_outage_under_load_is_503_with_retry_after_and_recovers_within_2_s(
    own_server: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    pgdata, url = own_server
    t, t0 = await _seed(url)
    configure_logging("INFO", "json")
    capsys.readouterr()
    app = create_app(make_settings(url), database_url=url)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, "the API server to start")
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    answers: list[Answer] = []
    stop = asyncio.Event()
    routes = _routes(t, t0)
    clients = [asyncio.create_task(_client(base, routes, n, answers, stop)) for n in range(CLIENTS)]
    try:
        await asyncio.sleep(2)
        assert {a.status for a in answers} == {200}, [a for a in answers if a.status != 200][:5]

        await asyncio.to_thread(stop_embedded, pgdata)
        down_at = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        async with httpx.AsyncClient(base_url=base, timeout=10) as probe:
            ready = await probe.get("/api/v1/ready")
            assert ready.status_code == 503
            assert "database unreachable" in ready.json()["detail"]
            assert (await probe.get("/api/v1/health")).status_code == 200
            opened = await probe.get("/api/v1/stream", params={"tickers": t})  # a stream opened meanwhile
            assert opened.status_code == 503
            assert opened.headers["content-type"].startswith("application/problem+json")
            assert int(opened.headers["retry-after"]) >= 1
        restart_at = time.monotonic()
        await asyncio.to_thread(start_embedded, pgdata, "kalshi")
        back_at = time.monotonic()
        await asyncio.sleep(4)
    finally:
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
        server.should_exit = True
        await asyncio.wait_for(serving, 15)

    err = capsys.readouterr().err
    dropped = [a for a in answers if a.status is None]
    assert not dropped, f"{len(dropped)} requests got no HTTP answer, e.g. {dropped[:3]}"
    errors = [a for a in answers if a.status is not None and a.status >= 500 and a.status != 503]
    assert not errors, f"{len(errors)} answers ≥ 500 other than 503, e.g. {errors[:3]}"

    during = [a for a in answers if down_at <= a.at < restart_at]
    unavailable = [a for a in during if a.status == 503]
    assert len(unavailable) >= CLIENTS, "the outage must show as 503s"
    bare = [a for a in unavailable if not (a.problem and a.retry_after and int(a.retry_after) >= 1)]
    assert not bare, f"503s without a problem body and Retry-After, e.g. {bare[:3]}"
    assert {a.route.split("?")[0] for a in unavailable if a.fresh} >= {r.split("?")[0] for r in routes}
    # A request that skips the cache is never answered from it; an answer the cache kept says it is stale.
    assert not [a for a in during if a.fresh and a.status == 200]
    # (Within API_CACHE_FRESH_SECONDS of its build an answer is reused as usual, outage or not.)
    unmarked = [a for a in during if a.status == 200 and a.x_cache != "stale" and a.at > down_at + 1.5]
    assert not unmarked, f"answers from the cache during the outage must say so, e.g. {unmarked[:3]}"

    # Full service within 2 s of the database's return: from then on, every answer is a real 200.
    bad_after = [a.at for a in answers if a.at >= back_at and (a.status != 200 or a.x_cache == "stale")]
    recovered = max(bad_after, default=back_at) - back_at
    assert recovered <= 2.0, f"service came back {recovered:.2f} s after the database"
    assert len([a for a in answers if a.at >= back_at + 2.0]) >= CLIENTS * 10

    # One line when the outage starts, one when it ends; no tracebacks, not a line per request.
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = [e["event"] for e in logged]
    assert events.count("database_unreachable") == 1, events
    assert events.count("database_reachable") == 1, events
    assert not [e for e in logged if "exception" in e or "Traceback" in json.dumps(e)]
    assert not [e for e in logged if e["logger"].startswith("uvicorn") and e["level"] != "info"]
    # Other parts that reconnect on their own (the SSE listener) say so once an outage; nothing speaks per request.
    assert events.count("stream_listener_down") <= 1, events
    warnings = [e for e in logged if e["level"] != "info" and e["event"] != "stream_listener_down"]
    assert len(warnings) <= 3, warnings
