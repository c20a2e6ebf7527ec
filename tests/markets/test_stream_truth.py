"""The live stream against the truth: the simulator, the real recorder writing into a database of the test's own,
the API on a socket and one SSE client — every committed snapshot and trade of its tickers arrives exactly once,
in order, also across a 10 s disconnection resumed with ``Last-Event-ID``. And the stream's LISTEN connection
comes back within a second of the database."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import create_app
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.rows import MarketRow, SnapshotRow
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.fixtures.app import make_settings, market, ticker, write
from tests.markets.conftest import Sse, SseReader, running_api, sse
from tests.recorder.conftest import fast_config, sim_settings

pytestmark = pytest.mark.timeout(120)

LISTEN_APP = "kalshi-analytics-api-listen"


def _dec(v: Any) -> str | None:
    return None if v is None else str(v)


def _iso(v: Any) -> str:
    return str(v.isoformat().replace("+00:00", "Z"))


async def _rows(engine: AsyncEngine, tickers: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with engine.connect() as c:
        snaps = await c.execute(
            text(
                "SELECT ticker, ts, source, yes_bid, yes_ask, last_price, volume, status FROM market_snapshots "
                "WHERE ticker = ANY(:t)"
            ),
            {"t": tickers},
        )
        trades = await c.execute(
            text("SELECT trade_id, ticker, ts, yes_price, count FROM trades WHERE ticker = ANY(:t)"), {"t": tickers}
        )
        return [dict(r._mapping) for r in snaps], [dict(r._mapping) for r in trades]


def _snapshot_key(d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["ticker"], d["ts"], d["source"], d["yes_bid"], d["yes_ask"], d["last_price"], d["volume"], d["status"])


async def test_every_committed_snapshot_and_trade_arrives_once_also_across_a_resume(
    own_db: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    url, engine = own_db
    sim_cfg = SimulatorConfig(seed=11, markets=6, speed=5, port=0, rate_limit=None, activity=3.0)
    async with run_simulator(sim_cfg) as sim:
        open_markets = [m for m in sim.model.market_list if m.status == "active"]
        chosen = [m.ticker for m in open_markets[:3]]
        assert len(chosen) == 3
        # The markets are known before the client connects (an unknown ticker is a 404) and before anything of
        # theirs is recorded: so every row the recorder writes for them is news the client must get.
        await write(
            engine, *(MarketRow(m.ticker, event_ticker=m.event_ticker, status="active") for m in open_markets[:3])
        )
        app = create_app(make_settings(url, api_stream_heartbeat_seconds=0.5), engine=engine)
        async with running_api(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
            received: list[Sse] = []
            async with sse(client, {"tickers": ",".join(chosen), "kinds": "snapshot,trade"}) as reader:
                assert (await reader.events()).event == "ready"  # nothing recorded yet: no state to send
                service = RecorderService(engine, sim_settings(sim), fast_config(tmp_path))
                stop = asyncio.Event()
                task = asyncio.create_task(service.run(stop))
                await asyncio.wait_for(service.ready.wait(), 30)
                received += await reader.collect(6.0)
            assert received, "the recorder wrote nothing for the chosen markets within 6 s"
            last_id = received[-1].id
            assert last_id is not None

            await asyncio.sleep(10)  # away for 10 s while recording goes on

            back = datetime.now(UTC)
            async with sse(
                client, {"tickers": ",".join(chosen), "kinds": "snapshot,trade"}, {"Last-Event-ID": last_id}
            ) as reader:
                ready = await reader.events()
                assert (ready.event, ready.json()["resumed"]) == ("ready", True)
                resumed = await reader.collect(4.0)
                received += resumed
                stop.set()
                await asyncio.wait_for(task, 30)  # the recorder flushes and stops: nothing more is committed
                received += await reader.quiet(2.0)

    snaps, trades = await _rows(engine, chosen)
    assert snaps, "the simulator changed too little to test anything"
    assert trades, "the simulator traded too little to test anything"
    events = [e for e in received if e.id is not None]
    assert len(events) == len(received), "after `ready` every event carries an id"
    got_ids = [int(e.id or 0) for e in events]
    assert got_ids == sorted(set(got_ids)), "ids increase, none twice"

    # Exactly once: the multiset of events equals the rows in the database.
    got_snaps = Counter(
        (d["ticker"], d["ts"], d["source"], d["yes_bid"], d["yes_ask"], d["last_price"], d["volume"], d["status"])
        for d in (e.json() for e in events if e.event == "snapshot")
    )
    want_snaps = Counter(
        _snapshot_key(
            {
                **r,
                "ts": _iso(r["ts"]),
                **{k: _dec(r[k]) for k in ("yes_bid", "yes_ask", "last_price", "volume")},
            }
        )
        for r in snaps
    )
    assert got_snaps == want_snaps
    got_trades = Counter(
        (d["trade_id"], d["ticker"], d["yes_price"], d["count"])
        for d in (e.json() for e in events if e.event == "trade")
    )
    want_trades = Counter((r["trade_id"], r["ticker"], _dec(r["yes_price"]), _dec(r["count"])) for r in trades)
    assert got_trades == want_trades
    # What was committed while the client was away came on the resumed connection.
    cutoff = _iso(back - timedelta(seconds=1))
    missed = [e for e in resumed if e.event == "snapshot" and e.json()["received_at"] < cutoff]
    assert len(missed) >= 10
    # Both feeds arrive as events of their own.
    assert {"websocket", "poll"} <= {k[2] for k in got_snaps}


async def _listener_pid(engine: AsyncEngine) -> int | None:
    async with engine.connect() as c:
        pid = await c.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :a AND datname = current_database() "
                "ORDER BY backend_start DESC LIMIT 1"
            ),
            {"a": LISTEN_APP},
        )
        return pid.scalar_one_or_none()


async def _receives_a_new_snapshot(engine: AsyncEngine, reader: SseReader, t: str, price: str) -> None:
    now = datetime.now(UTC)
    await write(engine, SnapshotRow(ticker=t, ts=now, source="websocket", received_at=now, yes_bid=Decimal(price)))
    ev = await reader.until("snapshot", seconds=5)
    assert ev.json()["yes_bid"] == f"{Decimal(price):.4f}"


async def test_the_listener_is_back_within_a_second_of_the_database(
    own_db: tuple[str, AsyncEngine], server_url: str
) -> None:
    url, engine = own_db
    t = ticker()
    await write(engine, market(t))
    app = create_app(make_settings(url, api_stream_heartbeat_seconds=0.3), engine=engine)
    hub = None
    async with running_api(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        hub = app.state.stream_hub
        async with sse(client, {"tickers": t}) as reader:
            await reader.until("ready")

            # 1. Its connection is killed, the database stays: back at once, and nothing written meanwhile is lost.
            pid = await _listener_pid(engine)
            assert pid is not None
            async with engine.connect() as c:
                await c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            await wait_until(lambda: not hub.listening.is_set(), "the listener to notice", seconds=5)
            await _receives_a_new_snapshot(engine, reader, t, "0.31")
            await wait_until(hub.listening.is_set, "the listener to reconnect", seconds=1.5)

            # 2. The database refuses connections for 7 s (an outage as the listener sees it), then returns.
            name = engine.url.database
            admin = create_engine(server_url, pool_size=1)
            pid = await _listener_pid(engine)
            try:
                async with admin.connect() as c:
                    await c.execution_options(isolation_level="AUTOCOMMIT")
                    await c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                    await c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                    await wait_until(lambda: not hub.listening.is_set(), "the listener to notice", seconds=5)
                    await asyncio.sleep(7)
                    assert not hub.listening.is_set()
                    await c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                    back = time.monotonic()
            finally:
                async with admin.connect() as c:
                    await c.execution_options(isolation_level="AUTOCOMMIT")
                    await c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
                await admin.dispose()
            await wait_until(hub.listening.is_set, "the listener to reconnect", seconds=5)
            assert time.monotonic() - back < 1.2, "the listener must be back within ~1 s of the database"
            await _receives_a_new_snapshot(engine, reader, t, "0.32")
