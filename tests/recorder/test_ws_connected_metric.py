"""``kalshi_recorder_ws_connected``: the gauge the "WebSocket disconnected > 5 minutes" alert reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.recorder.conftest import fast_config, sim_settings

GAUGE = "kalshi_recorder_ws_connected"


async def test_gauge_follows_the_leaders_websocket(recorder_db_url: str, tmp_path: Path) -> None:
    engine = create_engine(recorder_db_url)
    stop = asyncio.Event()
    try:
        async with run_simulator(SimulatorConfig(seed=5, markets=4, speed=10, port=0, rate_limit=None)) as sim:
            service = RecorderService(engine, sim_settings(sim), fast_config(tmp_path))
            m = service.metrics
            assert m.value(GAUGE) == 0.0, "not connected before the stream starts"
            task = asyncio.create_task(service.run(stop))
            await asyncio.wait_for(service.ready.wait(), 30)
            await wait_until(lambda: m.value(GAUGE) == 1.0, "gauge 1 while connected")
            assert f"{GAUGE} 1.0" in m.render().decode()
        # The exchange went away: the socket is gone and reconnecting fails, so the gauge says 0.
        await wait_until(lambda: m.value(GAUGE) == 0.0, "gauge 0 once the exchange is gone", seconds=30)
        stop.set()
        await asyncio.wait_for(task, 30)
        assert m.value(GAUGE) == 0.0
    finally:
        stop.set()
        await engine.dispose()
