"""A PostgreSQL outage holds, not drops: the leader records on through a 15 s restart of its database (into the
queue, then the spill file), keeps its lease, and writes every frame the exchange sent once the database is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import text

from kalshi_analytics.db.embedded import start_embedded, stop_embedded
from kalshi_analytics.db.engine import create_engine
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
