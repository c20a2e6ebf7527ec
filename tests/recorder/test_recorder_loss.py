"""End to end against the simulator and a real PostgreSQL: dropped frames and disconnects lose nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.recorder.conftest import fast_config, sim_settings

RUN_SECONDS = 25


async def test_drops_and_disconnects_lose_no_trade_and_end_in_the_simulators_state(
    recorder_db_url: str, tmp_path: Path
) -> None:
    cfg = SimulatorConfig(seed=11, markets=12, speed=20, port=0, rate_limit=None, settlement_timer_seconds=(5, 20))
    engine = create_engine(recorder_db_url)
    try:
        async with run_simulator(cfg) as sim:
            settings = sim_settings(sim)
            service = RecorderService(engine, settings, fast_config(tmp_path))
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            await asyncio.wait_for(service.ready.wait(), 30)
            assert service.poller is not None
            model = sim.model
            first_trade = model.trades_offset + len(model.trades)

            sim.set_faults(ws_drop_fraction=0.05, ws_disconnect_every=8)
            await asyncio.sleep(RUN_SECONDS / 2)
            recording = service.poller.state
            open_now = [m.ticker for m in model.market_list if m.status == "active" and m.ticker in recording]
            sim.settle(open_now[0], "yes", finalize=True)  # mid-stream settlement, while frames are dropped
            sim.settle(open_now[1], "no")  # determined now, finalized after its timer
            await asyncio.sleep(RUN_SECONDS / 2)
            sim.reset_faults()
            sim.pause()
            await asyncio.sleep(2.0)  # let the last frames and repairs arrive
            assert service.gaps is not None
            assert service.poller is not None
            assert service.sink is not None
            async with asyncio.timeout(60):
                await service.gaps.wait_idle()
            await service.sink.flush()

            async with engine.connect() as c:
                stored = {r[0] for r in await c.execute(text("SELECT trade_id FROM trades"))}
                recorded = {r[0] for r in await c.execute(text("SELECT ticker FROM markets"))}
            expected = [t for t in model.trades_since(first_trade) if t.ticker in recorded]
            missing_before_sweep = [t for t in expected if t.trade_id not in stored]

            # One last poll, with the trade sweep: it also covers a dropped frame that was the last of its sid.
            await service.poller.poll_once(sweep=True)
            await service.sink.flush()

            async with engine.connect() as c:
                stored = {r[0] for r in await c.execute(text("SELECT trade_id FROM trades"))}
                gaps = (await c.execute(text("SELECT cause, repaired_at IS NOT NULL FROM feed_gaps"))).all()
                markets = {
                    r[0]: r[1:]
                    for r in await c.execute(text("SELECT ticker, status, coalesce(result, ''), volume FROM markets"))
                }
                last_prices = dict(
                    (
                        await c.execute(
                            text(
                                # The series' last state, whichever source gave it: a poll that adds nothing
                                # to the stream's newer frames is not written (recorder.consistency).
                                "SELECT DISTINCT ON (ticker) ticker, last_price FROM market_snapshots "
                                "WHERE last_price IS NOT NULL ORDER BY ticker, ts DESC, received_at DESC"
                            )
                        )
                    ).all()
                )
            async with KalshiRestClient(sim.base_url) as rest:
                truth = {m.ticker: m async for m in rest.iter_markets(tickers=sorted(markets))}
            stats = sim.state()
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await engine.dispose()

    print(
        f"trades expected={len(expected)} missing_before_sweep={len(missing_before_sweep)} gaps={len(gaps)} "
        f"dropped_frames={stats['ws_frames_dropped']} markets={len(markets)}"
    )
    assert len(expected) > 200, "the window must contain real activity"
    assert stats["ws_frames_dropped"] > 0
    missing = [t.trade_id for t in expected if t.trade_id not in stored]
    assert missing == [], f"{len(missing)} of {len(expected)} trades missing"
    causes = {c for c, _ in gaps}
    assert {"seq_jump", "disconnect"} <= causes, causes
    assert all(repaired for _, repaired in gaps), "every gap is repaired"
    # The gap repair alone (without the final sweep) leaves at most the undetectable trailing drops.
    assert len(missing_before_sweep) <= max(3, len(expected) // 100)
    for ticker, (status, result, volume) in markets.items():
        m = truth[ticker]
        assert status == str(m.status), ticker
        assert result == str(m.result or ""), ticker
        assert volume == m.volume, ticker
        assert last_prices.get(ticker) == m.last_price, ticker
    assert any(s == "finalized" for s, _, _ in markets.values()), "some market settled during the run"
