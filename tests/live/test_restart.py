"""The live runner killed with SIGKILL mid-session and started again (a separate process, as a user runs it):
no fill is written twice, cash and positions are those of the stored fills, the downtime is a session event and
no fill is time-stamped inside it; with the ``reset`` policy a new session starts and the old one stays readable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import MarketFilter
from kalshi_analytics.live import service
from kalshi_analytics.live.schemas import PaperSessionCreate
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import Simulator, SimulatorConfig, run_simulator
from tests.recorder.conftest import fast_config, sim_settings

pytestmark = pytest.mark.timeout(240)


class Runners:
    """``kalshi-analytics live runner`` subprocesses of this test (ended by their pid, only these)."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.env = {
            **os.environ,
            "DB_URL": url,
            "KALSHI_ANALYTICS_DATA_DIR": str(tmp),
            "LOG_LEVEL": "INFO",
            "STRATEGY_MODULES": "tests.live.strategies",  # the test's strategy, known to the runner process too
        }
        self.env.pop("TEST_DATABASE_URL", None)
        self.tmp = tmp
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        log = (self.tmp / f"runner-{len(self.procs)}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kalshi_analytics", "live", "runner", env=self.env, stdout=log, stderr=log
        )
        self.procs.append(proc)
        return proc

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


@pytest.fixture
async def recording(
    own_db: tuple[str, AsyncEngine], tmp_path: Path
) -> AsyncIterator[tuple[str, AsyncEngine, Simulator]]:
    """The simulator at wall-clock speed and the recorder writing into the test's own database."""
    url, engine = own_db
    sim_cfg = SimulatorConfig(seed=3, markets=8, speed=1, port=0, rate_limit=None, activity=6.0)
    async with run_simulator(sim_cfg) as sim:
        recorder = RecorderService(engine, sim_settings(sim), fast_config(tmp_path))
        stop = asyncio.Event()
        task = asyncio.create_task(recorder.run(stop))
        await asyncio.wait_for(recorder.ready.wait(), 30)
        try:
            yield url, engine, sim
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as c:
        return list(await c.execute(text(sql), params))


async def _fills(engine: AsyncEngine, sid: object) -> list[Any]:
    return await _rows(
        engine,
        "SELECT ticker, side, action, price, count, fee, snapshot_ts, snapshot_source, seq, cash_after "
        "FROM paper_fills WHERE session_id = :s ORDER BY id",
        s=sid,
    )


async def _until(pred: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def _active_tickers(engine: AsyncEngine) -> list[str]:
    """Six open markets, once the recorder has stored them."""
    sql = "SELECT ticker FROM markets WHERE status = 'active' ORDER BY ticker LIMIT 6"

    async def stored() -> bool:
        return len(await _rows(engine, sql)) == 6

    await _until(stored, 30, "the recorder to store the markets")
    return [r[0] for r in await _rows(engine, sql)]


async def test_sigkill_and_restart_resume_without_duplicates_or_trading_in_the_downtime(
    recording: tuple[str, AsyncEngine, Simulator], tmp_path: Path
) -> None:
    url, engine, _sim = recording
    runners = Runners(url, tmp_path)
    try:
        sid = await service.create_session(
            engine,
            PaperSessionCreate(
                strategy="test_every_few", market_filter=MarketFilter(tickers=await _active_tickers(engine))
            ),
        )
        first = await runners.start()

        async def some_fills() -> bool:
            return len(await _fills(engine, sid)) >= 6

        await _until(some_fills, 60, "fills from the first runner")
        os.kill(first.pid, signal.SIGKILL)  # mid-session, whatever it was doing
        await first.wait()
        before = await _fills(engine, sid)
        await asyncio.sleep(4)  # down: the recorder goes on recording
        await runners.start()

        async def traded_again() -> bool:
            return len(await _fills(engine, sid)) >= len(before) + 6

        await _until(traded_again, 90, "fills after the restart")
        await service.stop_session(engine, sid)
    finally:
        await runners.close()

    fills = await _fills(engine, sid)
    assert fills[: len(before)] == before  # what was committed stays as it was
    causes = [(f.ticker, f.snapshot_ts, f.snapshot_source, f.seq) for f in fills]
    assert len(set(causes)) == len(causes)
    # No duplicate trade either: the same (market, time, side, action) twice would be the same intent filled twice.
    trades = [(f.ticker, f.snapshot_ts, f.side, f.action) for f in fills]
    assert len(set(trades)) == len(trades)

    downtime = await _rows(
        engine, "SELECT at, until, details FROM paper_session_events WHERE session_id = :s AND kind = 'downtime'", s=sid
    )
    assert len(downtime) == 1
    gone, back, details = downtime[0]
    assert back - gone >= timedelta(seconds=4)
    assert details["snapshots_rebuilt"] > 0
    assert not [f for f in fills if gone <= f.snapshot_ts <= back], "a fill inside the downtime"
    assert before[-1].snapshot_ts < gone
    assert fills[len(before)].snapshot_ts > back

    # Cash and positions are exactly what the stored fills make (nothing settled in these minutes).
    view = await service.get_session(engine, sid)
    cash = view.initial_capital
    held: dict[tuple[str, str], Decimal] = {}
    for f in fills:
        sign = 1 if f.action == "buy" else -1
        cash -= sign * f.count * f.price + f.fee
        held[(f.ticker, f.side)] = held.get((f.ticker, f.side), Decimal(0)) + sign * f.count
        assert cash == f.cash_after
    assert view.cash == cash
    assert view.num_fills == len(fills)
    positions = {(p.ticker, p.side): p.contracts for p in await service.get_positions(engine, sid)}
    assert positions == {k: v for k, v in held.items() if v > 0}


async def test_reset_policy_starts_a_new_session_and_keeps_the_old_one_readable(
    recording: tuple[str, AsyncEngine, Simulator], tmp_path: Path
) -> None:
    url, engine, _sim = recording
    runners = Runners(url, tmp_path)
    try:
        old = await service.create_session(
            engine,
            PaperSessionCreate(
                strategy="test_every_few",
                market_filter=MarketFilter(tickers=await _active_tickers(engine)),
                restart_policy="reset",
            ),
        )
        first = await runners.start()

        async def some_fills() -> bool:
            return len(await _fills(engine, old)) >= 2

        await _until(some_fills, 60, "fills from the first runner")
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        before = await _fills(engine, old)
        await runners.start()

        async def replaced() -> bool:
            rows = await _rows(engine, "SELECT id FROM paper_sessions WHERE reset_of = :s", s=old)
            return bool(rows)

        await _until(replaced, 60, "the new session")
    finally:
        await runners.close()
    old_view = await service.get_session(engine, old)
    assert old_view.status == "stopped"
    assert "reset" in (old_view.stop_reason or "")
    assert await _fills(engine, old) == before  # readable, unchanged
    (new_id,) = (await _rows(engine, "SELECT id FROM paper_sessions WHERE reset_of = :s", s=old))[0]
    new_view = await service.get_session(engine, new_id)
    assert new_view.status == "running"
    assert new_view.cash == new_view.initial_capital == old_view.initial_capital
    assert new_view.tickers == old_view.tickers
    assert new_view.started_at > old_view.started_at
