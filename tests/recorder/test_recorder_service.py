"""The recorder service against the simulator: failover, bad frames, backfill (outages: test_outage_holds.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.recorder.backfill import BackfillError, backfill
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import Simulator, SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.recorder.conftest import fast_config, sim_settings


def _sim(**kw: object) -> SimulatorConfig:
    opts: dict[str, object] = {"seed": 5, "markets": 8, "speed": 10, "port": 0, "rate_limit": None}
    opts.update(kw)
    return SimulatorConfig(**opts)  # type: ignore[arg-type]


async def _count(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as c:
        return int((await c.execute(text(sql), params)).scalar_one())


async def _stored_trade_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as c:
        return {r[0] for r in await c.execute(text("SELECT trade_id FROM trades"))}


async def _settle_down(sim: Simulator, service: RecorderService) -> None:
    """Stop the exchange clock, let frames and repairs arrive, run a last poll with the trade sweep."""
    sim.pause()
    await asyncio.sleep(1.5)
    assert service.gaps is not None
    assert service.poller is not None
    assert service.sink is not None
    async with asyncio.timeout(60):
        await service.gaps.wait_idle()
    await service.poller.poll_once(sweep=True)
    await service.sink.flush()


async def test_the_standby_takes_over_within_10_s_when_the_leader_dies(recorder_db_url: str, tmp_path: Path) -> None:
    engine = create_engine(recorder_db_url)
    try:
        async with run_simulator(_sim()) as sim:
            settings = sim_settings(sim)
            cfg_a = fast_config(tmp_path, instance_id="rec-a")
            cfg_b = fast_config(tmp_path, instance_id="rec-b", lock_key=cfg_a.lock_key)
            a, b = RecorderService(engine, settings, cfg_a), RecorderService(engine, settings, cfg_b)
            stop = asyncio.Event()
            task_a = asyncio.create_task(a.run(stop))
            await asyncio.wait_for(a.ready.wait(), 30)
            task_b = asyncio.create_task(b.run(stop))
            await asyncio.sleep(2.0)  # a while with the leader alive: the standby must not start recording
            assert not b.ready.is_set(), "never two writers"
            assert b.election.role == "standby"

            # Kill the leader: its lock connection dies and its task is cancelled, as if the process vanished.
            pid = a.election.backend_pid
            assert pid is not None
            killed = asyncio.get_running_loop().time()
            task_a.cancel()
            async with engine.connect() as c:
                await c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            with pytest.raises(asyncio.CancelledError):
                await task_a
            rows_before = await _count(engine, "SELECT count(*) FROM market_snapshots")

            await asyncio.wait_for(b.ready.wait(), 10)
            took = asyncio.get_running_loop().time() - killed
            assert took < 10

            async def b_leads() -> bool:
                sql = "SELECT count(*) FROM recorder_heartbeats WHERE instance_id = 'rec-b' AND role = 'leader'"
                return await _count(engine, sql) == 1

            async def b_records() -> bool:
                return await _count(engine, "SELECT count(*) FROM market_snapshots") > rows_before

            await wait_until(b_leads, "the standby's heartbeat as leader")
            await wait_until(b_records, "the standby to record snapshots")
            stop.set()
            await asyncio.wait_for(task_b, 30)
    finally:
        await engine.dispose()


async def test_bad_frames_are_counted_kept_raw_and_recording_goes_on(recorder_db_url: str, tmp_path: Path) -> None:
    engine = create_engine(recorder_db_url)
    bad = ["{not json", '{"type":"mystery","sid":1,"msg":{}}', '{"type":"trade","sid":1,"seq":1,"msg":{"x":1}}']
    try:
        async with run_simulator(_sim(seed=3)) as sim:
            cfg = fast_config(tmp_path)
            service = RecorderService(engine, sim_settings(sim), cfg)
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            await asyncio.wait_for(service.ready.wait(), 30)
            async with httpx.AsyncClient() as http:
                for raw in bad:
                    r = await http.post(f"{sim.admin_url}/inject", content=raw)
                    assert r.json()["connections"] == 1
            assert service.ws is not None
            counters = service.ws.counters
            await wait_until(lambda: counters.bad_frames >= 3, "the client to read the three bad frames")
            trades_then = await _count(engine, "SELECT count(*) FROM trades")

            async def recording_goes_on() -> bool:
                return await _count(engine, "SELECT count(*) FROM trades") > trades_then

            await wait_until(recording_goes_on, "trades recorded after the bad frames", seconds=30)
            assert counters.bad_frames == 3
            assert counters.malformed_json == 1
            assert counters.unknown_type == 1
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await engine.dispose()
    assert cfg.rejected_frames_path is not None
    kept = [json.loads(line) for line in cfg.rejected_frames_path.read_text().splitlines()]
    assert [k["raw"] for k in kept] == bad
    assert [k["reason"] for k in kept] == ["malformed_json", "unknown_type", "invalid"]


async def test_backfill_is_idempotent_and_rejects_bad_input(recorder_db_url: str) -> None:
    engine = create_engine(recorder_db_url)
    try:
        async with run_simulator(_sim(seed=4, speed=300)) as sim:
            start = sim.model.now
            await wait_until(lambda: sim.model.now >= start + 600, "10 simulated minutes of history")
            sim.pause()
            ticker = next(m.ticker for m in sim.model.market_list if m.status == "active" and m.volume > 0)
            since = datetime.fromtimestamp(sim.model.start_ts, UTC)
            until = datetime.fromtimestamp(sim.model.now, UTC) + timedelta(minutes=1)
            async with KalshiRestClient(sim.base_url) as rest:
                first = await backfill(rest, engine, tickers=[ticker], since=since, until=until)
                second = await backfill(rest, engine, tickers=[ticker], since=since, until=until)
                with pytest.raises(BackfillError, match="unknown market"):
                    await backfill(rest, engine, tickers=["NOPE-1"], since=since, until=until)
                with pytest.raises(BackfillError, match="must be after"):
                    await backfill(rest, engine, tickers=[ticker], since=until, until=since)
            n_trades = sum(1 for t in sim.model.trades if t.ticker == ticker)
    finally:
        await engine.dispose()
    assert first.trades == n_trades > 0
    assert first.new["trades"] == n_trades
    assert first.new["market_snapshots"] == first.candles > 0
    assert second.new.get("trades", 0) == 0
    assert second.new.get("market_snapshots", 0) == 0
    assert second.duplicates["trades"] == n_trades


async def test_an_exchange_not_up_yet_is_waited_for_not_a_crash(recorder_db_url: str, tmp_path: Path) -> None:
    """Started before its exchange (a container before the simulator, a network down): the recorder says so, keeps
    trying, records once the exchange answers, and stops cleanly — it used to end with a traceback after 5 tries."""
    from kalshi_analytics.config import load_settings
    from tests.conftest import free_port

    port = free_port()
    settings = load_settings(
        kalshi_api_base=f"http://127.0.0.1:{port}/trade-api/v2",
        kalshi_ws_url=f"ws://127.0.0.1:{port}/trade-api/ws/v2",
        kalshi_rate_limit_rps=2000,
    )
    engine = create_engine(recorder_db_url)
    service = RecorderService(engine, settings, fast_config(tmp_path))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.sleep(12)  # longer than the REST client's five tries
        assert not task.done(), task.exception() if task.done() else None
        assert not service.ready.is_set()
        async with run_simulator(_sim(port=port)):
            await asyncio.wait_for(service.ready.wait(), 30)

            async def recorded() -> bool:
                return await _count(engine, "SELECT count(*) FROM market_snapshots") > 0

            await wait_until(recorded, "snapshots recorded", seconds=20)
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        stop.set()
        if not task.done():
            task.cancel()
        await engine.dispose()
