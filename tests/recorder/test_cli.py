"""The recorder's commands end to end, in a subprocess against the built-in exchange."""

from __future__ import annotations

import asyncio
import os

from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.test_cli import CLI


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The CLI in a subprocess without blocking this loop (the simulator it talks to runs in it)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_"))}
    full_env.update(env)
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=full_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_backfill_reads_relative_times(recorder_db_url: str) -> None:
    config = SimulatorConfig(seed=4, markets=6, speed=300, port=0, rate_limit=None)
    async with run_simulator(config) as sim:
        await asyncio.sleep(1)  # ~5 simulated minutes of trades
        sim.pause()
        ticker = next(m.ticker for m in sim.model.market_list if m.status == "active" and m.volume > 0)
        trades = sum(1 for t in sim.model.trades if t.ticker == ticker)
        env = {"DB_URL": recorder_db_url, "KALSHI_API_BASE": sim.base_url, "LOG_LEVEL": "WARNING"}
        # The simulated clock runs ahead of the wall clock: the window reaches a day into the future.
        code, out, err = await _cli("backfill", "--ticker", ticker, "--since", "-1d", "--until", "+1d", env=env)
        assert code == 0, err
        assert f"candles, {trades} trades" in out, out
        assert f"trades:           {trades} new, 0 duplicate" in out, out

        code, _, err = await _cli("backfill", "--ticker", ticker, "--since", "-1x", env=env)
        assert code == 1
        assert err.strip().splitlines() == [
            "error: --since: cannot read time '-1x': use ISO 8601 (2026-11-01 or 2026-11-01T12:00Z), Unix seconds, "
            "now, or relative (-90m, -1d, -2w)"
        ]
