"""One time base, end to end: a recorder against a simulator whose REST answers are CDN-stale and whose stream
drops frames; every market's stored series must read as one consistent history."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from sqlalchemy import text

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.kalshi.status import status_rank
from kalshi_analytics.recorder.consistency import SnapshotGate
from kalshi_analytics.recorder.metrics import histogram_quantile
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.faults import Faults
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.recorder.conftest import fast_config, sim_settings

RUN_SECONDS = 20
LAG = "kalshi_recorder_commit_lag_seconds"


async def test_stale_rest_and_dropped_frames_leave_every_series_ordered_monotone_and_fresh(
    recorder_db_url: str, tmp_path: Path
) -> None:
    faults = Faults(rest_stale_seconds=10, ws_drop_fraction=0.05)
    cfg = SimulatorConfig(
        seed=23, markets=12, speed=1.0, activity=15.0, port=0, rate_limit=None, settlement_timer_seconds=(3, 8)
    )
    engine = create_engine(recorder_db_url)
    try:
        async with run_simulator(cfg) as sim:
            sim.set_faults(**faults.model_dump(exclude={"rate_limit_storm_until"}))
            service = RecorderService(engine, sim_settings(sim), fast_config(tmp_path))
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            await asyncio.wait_for(service.ready.wait(), 30)
            assert service.poller is not None
            recorded = [t for t in service.poller.tickers if sim.model.markets[t].status == "active"]
            await asyncio.sleep(RUN_SECONDS / 2)  # recording under the faults is the test
            # Statuses move while the CDN still serves the old ones: determined now, finalized a few s later.
            for ticker in recorded[:3]:
                sim.settle(ticker, "yes")
            await asyncio.sleep(RUN_SECONDS / 2)
            await wait_until(
                lambda: service.gate is not None and sum(service.gate.held_back.values()) > 0,
                "the as-of rule to hold something back",
            )
            assert service.sink is not None
            await service.sink.flush()
            p50 = histogram_quantile(service.metrics, LAG, 0.5)
            p99 = histogram_quantile(service.metrics, LAG, 0.99)
            by_kind = {
                kind: [histogram_quantile(service.metrics, LAG, q, {"kind": kind}) for q in (0.5, 0.99)]
                for kind in ("snapshot", "trade")
            }
            held = dict(service.gate.held_back) if service.gate is not None else {}
            dropped = sim.state()["ws_frames_dropped"]
            cache_hits = sim.state()["rest_cache"]["hits"]
            stop.set()
            await asyncio.wait_for(task, 30)

        async with engine.connect() as c:
            rows = (
                await c.execute(
                    text(
                        "SELECT ticker, ts, source, volume, status FROM market_snapshots "
                        "ORDER BY ticker, ts, received_at"
                    )
                )
            ).all()
        reseeded = SnapshotGate(_discard)
        await reseeded.seed(engine)
    finally:
        await engine.dispose()

    by_source: dict[str, int] = {}
    for row in rows:
        by_source[row[2]] = by_source.get(row[2], 0) + 1
    print(
        f"rows={by_source} commit_lag p50<={p50} p99<={p99} (p50, p99 by kind: {by_kind}) held_back={held} "
        f"ws_frames_dropped={dropped} rest_cache_hits={cache_hits}"
    )
    assert dropped > 0
    assert cache_hits > 0
    assert {s for _, _, s, _, _ in rows} >= {"poll", "websocket"}
    series: dict[str, list[tuple[object, ...]]] = {}
    for ticker, ts, source, volume, status in rows:
        series.setdefault(ticker, []).append((ts, source, volume, status))
    for ticker, points in series.items():
        volumes = [(ts, src, v) for ts, src, v, _ in points if v is not None]
        for before, after in itertools.pairwise(volumes):
            assert after[2] >= before[2], f"{ticker}: volume fell from {before} to {after}"
        ranks = [(ts, src, s, status_rank(s)) for ts, src, _, s in points if s is not None]
        for before, after in itertools.pairwise(ranks):
            assert after[3] >= before[3], f"{ticker}: status went back from {before} to {after}"  # type: ignore[operator]
    settled = [series[t] for t in recorded[:3] if t in series]
    assert any(any(s in ("determined", "finalized") for *_, s in pts) for pts in settled), "statuses moved"
    assert p50 is not None
    assert p50 <= 1.0, f"commit lag p50 {p50} s: the exchange clock or the recorder is behind"
    # A new leader continues from the stored history: the mark of every market is its last stored volume.
    for ticker, points in series.items():
        mark = reseeded.marks.get(ticker)
        last_volume = next((v for _, _, v, _ in reversed(points) if v is not None), None)
        assert mark is not None
        assert mark.head_volume == last_volume, ticker


async def _discard(item: object) -> None:
    return None
