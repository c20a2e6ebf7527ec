"""A PostgreSQL outage holds, not drops: the leader records on through a 15 s restart of its database (into the
queue, then the spill file), keeps its lease, and writes every frame the exchange sent once the database is back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from kalshi_analytics.db.embedded import start_embedded, stop_embedded
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.leader import LeaderElection, LeadershipLost
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.recorder.conftest import fast_config, sim_settings

OUTAGE_SECONDS = 15


async def test_a_15_s_database_restart_loses_no_snapshot_or_trade_the_exchange_sent(
    own_server: tuple[Path, str], tmp_path: Path
) -> None:
    pgdata, url = own_server
    engine = create_engine(url, pool_size=3)
    sim_cfg = SimulatorConfig(seed=9, markets=12, speed=25, port=0, rate_limit=None)
    # A small queue, so the outage overflows it into the spill file.
    cfg = fast_config(
        tmp_path, sink_options={"queue_max": 200, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}
    )
    try:
        async with run_simulator(sim_cfg) as sim, httpx.AsyncClient(base_url=sim.admin_url, timeout=30) as admin:
            service = RecorderService(engine, sim_settings(sim), cfg)
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            await asyncio.wait_for(service.ready.wait(), 30)
            epoch = service.election.epoch
            sink = service.sink
            assert sink is not None
            await asyncio.sleep(2)  # recording normally first

            await asyncio.to_thread(stop_embedded, pgdata)
            frames_before = (await admin.get("/log", params={"limit": 1})).json()["total"]
            await asyncio.sleep(OUTAGE_SECONDS)  # the outage is the test
            frames_during = (await admin.get("/log", params={"limit": 1})).json()["total"] - frames_before
            held_at_peak = sink.held
            spilled = sink.stats.spilled_total
            assert service.election.is_leader, "a database outage does not depose the leader"
            assert service.election.holding
            await asyncio.to_thread(start_embedded, pgdata, "kalshi")

            await wait_until(lambda: not service.election.holding, "the leader to re-take its lease", seconds=30)
            await asyncio.sleep(2)  # recording normally again before the exchange stops
            sim.pause()
            await asyncio.sleep(1.5)  # the last frames arrive
            await asyncio.wait_for(sink.flush(), 60)

            log = (await admin.get("/log", params={"dropped": "false", "limit": 1_000_000})).json()["entries"]
            async with engine.connect() as c:
                trades = {r[0] for r in await c.execute(text("SELECT trade_id FROM trades"))}
                snaps = set(
                    (
                        await c.execute(
                            text("SELECT ticker, sequence FROM market_snapshots WHERE source = 'websocket'")
                        )
                    ).all()
                )
                causes = {r[0] for r in await c.execute(text("SELECT cause FROM feed_gaps"))}
            metrics = service.metrics
            stats = sink.stats
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await engine.dispose()

    print(  # the figures the README quotes
        f"outage {OUTAGE_SECONDS} s: {frames_during} frames sent, {held_at_peak} rows held at the peak, {spilled} "
        f"spilled; db_outages={metrics.value('kalshi_recorder_db_outages_total'):g} "
        f"db_retries={metrics.value('kalshi_recorder_db_retries_total'):g}"
    )
    assert frames_during > 100, "the exchange kept sending during the outage"
    assert held_at_peak > 200, "the leader kept recording into its buffer"
    assert spilled > 0, "past the queue's bound, rows went to the spill file"
    sent_trades = {e["trade_id"] for e in log if e["type"] == "trade"}
    sent_tickers = {(e["market_ticker"], e["seq"]) for e in log if e["type"] == "ticker"}
    assert sent_trades, "trades were sent"
    assert sent_trades - trades == set(), f"{len(sent_trades - trades)} of {len(sent_trades)} trade frames lost"
    assert sent_tickers - snaps == set(), f"{len(sent_tickers - snaps)} of {len(sent_tickers)} ticker frames lost"
    assert service.election.epoch == epoch, "the same leader, the same epoch: it held, nobody took over"
    assert "outage" not in causes, "nothing was lost, so there is no outage gap to repair"
    assert metrics.value("kalshi_recorder_db_outages_total") >= 1
    assert metrics.value("kalshi_recorder_db_retries_total") > 0
    assert metrics.value("kalshi_recorder_lease_outages_total") >= 1
    assert metrics.value("kalshi_recorder_spilled_rows_total") == stats.spilled_total >= spilled
    assert stats.rejected == {}
    assert stats.spilled == 0, "the spill file was written out and removed"
    assert list((tmp_path / "spill").glob("*")) == []


async def test_after_a_restart_the_holder_keeps_its_turn_and_is_deposed_only_if_it_does_not_come_back(
    own_server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata, url = own_server
    engine = create_engine(url, pool_size=2)
    opts: dict[str, Any] = {"lock_key": 77, "poll_interval": 0.2, "check_interval": 0.2, "heartbeat_interval": 0.5}
    try:
        async with (
            LeaderElection(engine, instance_id="a", lease_seconds=3.0, **opts) as a,
            LeaderElection(engine, instance_id="b", lease_seconds=3.0, **opts) as b,
        ):
            await asyncio.wait_for(a.wait_until_leader(), 10)
            epoch = a.epoch
            standby = asyncio.create_task(b.wait_until_leader())
            outcome: list[str] = []

            async def work() -> None:
                try:
                    async with a.leadership():
                        await asyncio.sleep(3600)
                except LeadershipLost:
                    outcome.append("lost")

            working = asyncio.create_task(work())

            # 1. A restart: the standby, back first or not, leaves the holder a lease period to re-take its lease.
            await asyncio.to_thread(stop_embedded, pgdata)
            await wait_until(lambda: a.holding, "the leader to notice and hold")
            await asyncio.to_thread(start_embedded, pgdata, "kalshi")
            await wait_until(lambda: not a.holding, "the leader to re-take its lease", seconds=30)
            assert a.epoch == epoch
            await asyncio.sleep(a.lease_seconds + 1)  # past the standby's grace: a renews, so b keeps waiting
            assert a.is_leader
            assert not standby.done()

            # 2. A restart the holder does not come back from within its turn: the standby takes over, and the
            # holder, once it reaches the database, finds a new epoch and stands down.
            await asyncio.to_thread(stop_embedded, pgdata)
            await wait_until(lambda: a.holding, "the leader to notice and hold")

            async def unreachable() -> None:
                raise OSError("a is cut off")

            monkeypatch.setattr(a, "_connection", unreachable)
            await asyncio.to_thread(start_embedded, pgdata, "kalshi")
            await asyncio.wait_for(standby, 30)
            assert b.epoch == (epoch or 0) + 1
            assert a.holding, "a still holds, not knowing yet"
            monkeypatch.undo()
            await asyncio.wait_for(working, 30)
            assert outcome == ["lost"]
            assert not a.is_leader
            assert b.is_leader
    finally:
        await engine.dispose()
