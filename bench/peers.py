"""Our backtest engine beside vectorbt and backtesting.py, on the same generated data.

    pip install vectorbt backtesting   # not project dependencies: only this comparison needs them
    .venv/bin/python -m bench.peers [--markets 100] [--snapshots 1000000] [--bt-markets 20]

The data are ``bench.backtest_throughput.generate``'s price paths, loaded once with our columnar loader; each
library then gets the YES mid of every market as a numpy array (its own load is not timed). The rule is the
fade of ``fade_overreaction`` on the YES side (lookback 10, threshold 0.06, hold 30): buy when the mid fell by
more than the threshold over the lookback (a fresh crossing), sell ``hold`` snapshots later. Our engine runs
the full strategy (both sides, Kalshi fees in Decimal per fill, settlement); the peers run the YES leg with a
proportional fee. The figures compare simulation throughput in bars (snapshots) per second.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from bench.backtest_throughput import PARAMS, generate
from bench.common import fresh_database
from kalshi_analytics.backtests.data import MarketFilter, load_dataset
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.strategies import get_strategy

LOOKBACK, THRESHOLD, HOLD = PARAMS["lookback"], PARAMS["threshold"], PARAMS["hold"]


def entries_exits(mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    move = np.full(len(mid), np.nan)
    move[LOOKBACK:] = mid[LOOKBACK:] - mid[:-LOOKBACK]
    with np.errstate(invalid="ignore"):
        down = move < -THRESHOLD
    entries = down.copy()
    entries[1:] &= ~down[:-1]
    exits = np.zeros(len(mid), bool)
    exits[HOLD:] = entries[:-HOLD]
    return entries, exits


def run_vectorbt(mids: np.ndarray) -> dict[str, float]:
    import vectorbt as vbt

    entries = np.empty(mids.shape, bool)
    exits = np.empty(mids.shape, bool)
    for k in range(mids.shape[1]):
        entries[:, k], exits[:, k] = entries_exits(mids[:, k])
    out: dict[str, float] = {}
    for label in ("cold", "warm"):  # cold includes numba's compilation
        t = time.perf_counter()
        pf = vbt.Portfolio.from_signals(mids, entries, exits, fees=0.0175, init_cash=10_000.0, size=10.0)
        pnl = float(np.nansum(pf.total_profit()))
        secs = time.perf_counter() - t
        out[f"vectorbt_{label}_bars_per_s"] = mids.size / secs
    out["vectorbt_total_profit"] = pnl
    return out


def run_backtesting_py(mids: np.ndarray) -> dict[str, float]:
    from backtesting import Backtest, Strategy

    class Fade(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.held = -1

        def next(self) -> None:
            close = self.data.Close
            i = len(close) - 1
            if self.position and i - self.held >= HOLD:
                self.position.close()
            if i > LOOKBACK:
                m, prev = close[-1] - close[-1 - LOOKBACK], close[-2] - close[-2 - LOOKBACK]
                if m < -THRESHOLD and not prev < -THRESHOLD and not self.position:
                    self.buy(size=10)
                    self.held = i

    t = time.perf_counter()
    index = pd.date_range("2026-01-01", periods=mids.shape[0], freq="10s")
    for k in range(mids.shape[1]):
        df = pd.DataFrame({c: mids[:, k] for c in ("Open", "High", "Low", "Close")}, index=index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Backtest(df, Fade, cash=10_000, commission=0.0175, finalize_trades=True).run()
    secs = time.perf_counter() - t
    return {"backtesting_py_bars_per_s": mids.size / secs}


async def main(args: argparse.Namespace) -> None:
    async with fresh_database() as url:
        start, end, _ = await generate(url, args.markets, args.snapshots)
        engine = create_engine(url, pool_size=2)
        ds = await load_dataset(engine, start, end, MarketFilter(series=["KXBENCH"]))
        await engine.dispose()
    per = ds.rows // len(ds.markets)
    mids = np.stack([ds.market(k).mid[:per] for k in range(len(ds.markets))], axis=1)
    fade = get_strategy("fade_overreaction")
    params = fade.Params(**PARAMS)
    results: dict[str, Any] = {"bars": mids.size, "markets": mids.shape[1]}
    t = time.perf_counter()
    simulate(ds, fade, params, EngineConfig())
    results["ours_simulate_bars_per_s"] = ds.rows / (time.perf_counter() - t)
    results.update(run_vectorbt(mids))
    results.update(run_backtesting_py(mids[:, : args.bt_markets]))
    for key, value in results.items():
        print(f"{key:32s} {value:>14,.0f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=100)
    ap.add_argument("--snapshots", type=int, default=1_000_000)
    ap.add_argument("--bt-markets", type=int, default=20, help="markets for backtesting.py (it is the slowest)")
    asyncio.run(main(ap.parse_args()))
