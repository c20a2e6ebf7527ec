"""Paper trading equals a backtest over the same data, by construction: the simulator, the real recorder and the
live runner together for a while, markets settling meanwhile; then a backtest over the session's window gives the
same fills and the same P&L to the cent, and the divergence report is empty."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import MarketFilter, load_dataset
from kalshi_analytics.backtests.engine import simulate
from kalshi_analytics.backtests.service import resolve
from kalshi_analytics.live import service
from kalshi_analytics.live.compare import compare_session
from kalshi_analytics.live.runner import LiveRunner
from kalshi_analytics.live.schemas import PaperSessionCreate
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.recorder.conftest import fast_config, sim_settings

pytestmark = pytest.mark.timeout(240)


async def _settled_during(engine: AsyncEngine, sid: object) -> list[str]:
    async with engine.connect() as c:
        rows = await c.execute(
            text("SELECT ticker FROM paper_session_events WHERE session_id = :s AND kind = 'settled'"), {"s": sid}
        )
        return [r[0] for r in rows]


async def test_a_paper_session_equals_a_backtest_of_its_window(own_db: tuple[str, AsyncEngine], tmp_path: Path) -> None:
    _url, engine = own_db
    # Fast simulated time so that hourly markets close and settle within the test (results 5–10 s after).
    sim_cfg = SimulatorConfig(
        seed=5, markets=8, speed=20, port=0, rate_limit=None, activity=2.0, settlement_timer_seconds=(5, 10)
    )
    async with run_simulator(sim_cfg) as sim:
        recorder = RecorderService(engine, sim_settings(sim), fast_config(tmp_path))
        stop = asyncio.Event()
        rec_task = asyncio.create_task(recorder.run(stop))
        await asyncio.wait_for(recorder.ready.wait(), 30)
        await asyncio.sleep(2)
        runner = LiveRunner(engine, lock_key=random.randrange(1, 2**62), idle_wait=0.2)
        run_task = asyncio.create_task(runner.run(stop))
        async with engine.connect() as c:
            tickers = [
                r[0]
                for r in await c.execute(
                    text("SELECT ticker FROM markets WHERE status = 'active' ORDER BY close_time, ticker LIMIT 6")
                )
            ]
        sid = await service.create_session(
            engine, PaperSessionCreate(strategy="test_every_few", market_filter=MarketFilter(tickers=tickers))
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await asyncio.sleep(3)
            if (
                len(await _settled_during(engine, sid)) >= 2
                and (await service.get_session(engine, sid)).num_fills >= 20
            ):
                break
        await asyncio.sleep(3)
        await service.stop_session(engine, sid)
        stop.set()
        await asyncio.wait_for(rec_task, 30)
        await asyncio.wait_for(run_task, 30)

    view = await service.get_session(engine, sid)
    settled = await _settled_during(engine, sid)
    assert view.num_fills >= 20, "the strategy traded too little to compare anything"
    assert len(settled) >= 2, "no market settled during the session"
    report = await compare_session(engine, sid)
    assert report.differences == []
    assert report.paper_fills == report.backtest_fills == view.num_fills
    assert report.paper_pnl == report.backtest_pnl == view.total_pnl

    # The same, by hand: a plain backtest of the window, fill for fill (ticker, time, side, action, price, count,
    # fee) against what the session stored.
    async with engine.connect() as c:
        stored = [
            tuple(r)
            for r in await c.execute(
                text(
                    "SELECT ticker, snapshot_ts, side, action, price, count, fee FROM paper_fills "
                    "WHERE session_id = :s ORDER BY id"
                ),
                {"s": sid},
            )
        ]
    req = service.backtest_request(
        {
            "strategy_name": view.strategy,
            "strategy_version": view.strategy_version,
            "params": view.params,
            "tickers": view.tickers,
            "config": view.config,
        },
        report.window_start,
        report.window_end,
    )
    strategy, params = resolve(req)
    ds = await load_dataset(engine, report.window_start, report.window_end, req.market_filter)
    sim_result = simulate(ds, strategy, params, req.engine_config())
    names = [m.ticker for m in ds.markets]
    from kalshi_analytics.live.session import from_us

    replayed = [
        (names[k], from_us(ts), "yes" if side == 1 else "no", "buy" if buy else "sell", price, count, fee)
        for k, side, buy, price, count, fee, ts, _src, _sig, _cash in sim_result.trades
    ]
    assert [(*f[:4], f[4], f[5], f[6]) for f in stored] == replayed
    # Settlement paid cash at its time: the session holds nothing in the settled markets, and its cash is the
    # backtest's final cash.
    assert view.cash == sim_result.final_cash
