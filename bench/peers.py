"""Our backtest engine's simulation beside vectorbt and backtesting.py, on the same data, in one run.

    pip install vectorbt backtesting   # not project dependencies: only this comparison needs them
    .venv/bin/python -m bench.peers [--markets 1000] [--snapshots 10000000] [--bt-markets 10] [--repeat 3]
                                    [--threshold 0.06]

The data are ``bench.backtest_throughput.generate``'s price paths, loaded once with our loader; each library
then gets numpy arrays (its own loading is not timed). The rule is ``fade_overreaction`` (lookback 10, threshold
0.06 on the YES mid — ``--threshold``: 0.055 takes every move of 6 cents, a fill every ~65 snapshots — hold 30,
size 10), on both sides: buy YES at the ask after a fall, buy NO at the NO ask
(1 − YES bid) after a rise, sell each 30 snapshots later at the bid. Every library gets the same fee — Kalshi's
taker fee ``ceil_to_cent(0.07 × C × P × (1 − P))`` per fill — and one account of $1,000,000 (enough that
nothing is refused):

- ours: ``simulate`` with its defaults — the displayed-liquidity fill model consuming the touch, Decimal fees and
  accounting, settlement, and the equity curve sampled every minute with every fill — on the dataset as loaded;
- vectorbt: ``Portfolio.from_signals`` over a YES and a NO column per market (cash shared by all columns,
  ``accumulate=True`` like ours), orders at the traded price (ask to buy, bid to sell) with the fee per fill as
  ``fixed_fees``; timed with ``total_profit`` (its metrics are lazy);
- backtesting.py: one ``Backtest`` per market and side (it has one instrument per run), ``trade_on_close`` at
  the traded price, the fee as a commission function; on ``--bt-markets`` markets (it is the slowest), rated per
  snapshot like the others.

Cold = the first call in the process (vectorbt's includes numba compiling its kernels); warm = the median of
``--repeat`` later calls. Rates are snapshots (bars of one market) per second of wall time, and per second of
this process's CPU time (``warm_snapshots_per_cpu_s``: less disturbed by other work on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import warnings
from decimal import Decimal
from statistics import median
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bench.backtest_throughput import PARAMS, generate
from bench.common import fresh_database
from kalshi_analytics.backtests.data import Dataset, MarketFilter, load_dataset
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.strategies import get_strategy

LOOKBACK, HOLD, SIZE = PARAMS["lookback"], PARAMS["hold"], PARAMS["size"]
CAPITAL = 1_000_000.0
Matrix = npt.NDArray[np.float64]


def matrices(ds: Dataset) -> tuple[Matrix, Matrix]:
    """YES bid and ask as (snapshots × markets); every market has the same number of snapshots."""
    per = ds.rows // len(ds.markets)
    cols = [ds.columns[c] for c in ("yes_bid", "yes_ask")]
    starts = ds.offsets[:-1]
    idx = starts[None, :] + np.arange(per)[:, None]
    return cols[0][idx], cols[1][idx]


def fresh(cond: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    out = cond.copy()
    out[1:] &= ~cond[:-1]
    return out


def signals(yb: Matrix, ya: Matrix, threshold: float) -> dict[str, Any]:
    """Entries, exits and traded prices of the fade rule, YES columns then NO columns."""
    mid = (yb + ya) / 2
    move = np.full(mid.shape, np.nan)
    move[LOOKBACK:] = np.round(mid[LOOKBACK:] - mid[:-LOOKBACK], 9)  # as the strategy compares its moves
    with np.errstate(invalid="ignore"):
        buy_yes, buy_no = fresh(move < -threshold), fresh(move > threshold)

    def later(e: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        x = np.zeros_like(e)
        x[HOLD:] = e[:-HOLD]
        return x

    entries = np.concatenate([buy_yes, buy_no], axis=1)
    exits = np.concatenate([later(buy_yes), later(buy_no)], axis=1)
    # Buy YES at its ask, sell at its bid; a NO ask is 1 − the YES bid, a NO bid 1 − the YES ask.
    price = np.concatenate([np.where(buy_yes, ya, yb), np.where(buy_no, 1 - yb, 1 - ya)], axis=1)
    return {"entries": entries, "exits": exits, "price": price}


def kalshi_fee(price: Any, contracts: Any) -> Any:
    """Kalshi's taker fee per fill, rounded up to the cent (rounded to 1e-9 first: float noise is not a cent)."""
    return np.ceil(np.round(0.07 * contracts * price * (1 - price) * 100, 9)) / 100


def timed(fn: Any, repeat: int) -> tuple[float, float, float, Any]:
    """Seconds of the first call, median seconds of ``repeat`` more, their median CPU seconds (this process's:
    less sensitive than wall time to other work on a shared machine), and the last result."""
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    warm, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        warm.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return cold, median(warm), median(cpu), out


def run_ours(ds: Dataset, repeat: int, threshold: float) -> dict[str, Any]:
    fade = get_strategy("fade_overreaction")
    params = fade.Params(**{**PARAMS, "threshold": threshold})
    cfg = EngineConfig(initial_capital=Decimal(int(CAPITAL)))
    cold, warm, cpu, sim = timed(lambda: simulate(ds, fade, params, cfg), repeat)
    return {
        "cold_s": cold,
        "warm_s": warm,
        "warm_cpu_s": cpu,
        "snapshots": ds.rows,
        "fills": sim.fills,
        "refused": sim.skipped,
        "pnl": float(sim.total_pnl),
        "curve_points": len(sim.curve.ts_us),
    }


def run_vectorbt(sig: dict[str, Any], snapshots: int, repeat: int, *, yes_only: bool = False) -> dict[str, Any]:
    """Both sides (a YES and a NO column per market), or with ``yes_only`` the YES columns alone (half the work:
    the comparison bench/README made before both sides were asked for)."""
    import vectorbt as vbt

    if yes_only:
        half = sig["price"].shape[1] // 2
        sig = {k: v[:, :half] for k, v in sig.items()}
    fees = kalshi_fee(sig["price"], SIZE)

    def once() -> Any:
        pf = vbt.Portfolio.from_signals(
            sig["price"], sig["entries"], sig["exits"], size=float(SIZE), fixed_fees=fees, init_cash=CAPITAL,
            cash_sharing=True, group_by=True, accumulate=True,
        )  # fmt: skip
        return pf, float(np.sum(pf.total_profit()))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cold, warm, cpu, (pf, pnl) = timed(once, repeat)
    return {
        "cold_s": cold,
        "warm_s": warm,
        "warm_cpu_s": cpu,
        "snapshots": snapshots,
        "fills": int(pf.orders.count().sum()),
        "pnl": pnl,
    }


def run_backtesting_py(sig: dict[str, Any], markets: int, repeat: int) -> dict[str, Any]:
    os.environ["TQDM_DISABLE"] = "1"  # its per-run progress bars
    from backtesting import Backtest, Strategy

    n, m = sig["price"].shape[0], sig["price"].shape[1] // 2
    cols = [*range(markets), *(m + k for k in range(markets))]  # YES and NO of the first markets
    index = pd.date_range("2026-01-01", periods=n, freq="10s")

    class Fade(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            pass

        def next(self) -> None:  # self.data is the history up to this bar
            if self.data.Exit[-1] and self.position.size >= SIZE:
                self.sell(size=SIZE)
            if self.data.Entry[-1]:
                self.buy(size=SIZE)

    frames = []
    for c in cols:
        p = sig["price"][:, c]
        frames.append(
            pd.DataFrame(
                {"Open": p, "High": p, "Low": p, "Close": p, "Entry": sig["entries"][:, c], "Exit": sig["exits"][:, c]},
                index=index,
            )
        )

    def once() -> float:
        pnl = 0.0
        for df in frames:
            bt = Backtest(
                df, Fade, cash=CAPITAL, commission=lambda size, price: kalshi_fee(price, abs(size)),
                trade_on_close=True, finalize_trades=True,
            )  # fmt: skip
            pnl += float(bt.run()["Equity Final [$]"]) - CAPITAL
        return pnl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cold, warm, cpu, pnl = timed(once, max(1, repeat // 3))
    return {"cold_s": cold, "warm_s": warm, "warm_cpu_s": cpu, "snapshots": n * markets, "markets": markets, "pnl": pnl}


def rates(name: str, r: dict[str, Any]) -> dict[str, Any]:
    return {
        "library": name,
        "cold_snapshots_per_s": round(r["snapshots"] / r["cold_s"]),
        "warm_snapshots_per_s": round(r["snapshots"] / r["warm_s"]),
        "warm_snapshots_per_cpu_s": round(r["snapshots"] / r["warm_cpu_s"]),
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()},
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_database() as url:
        print(f"generating {args.snapshots:,} snapshots across {args.markets:,} markets ...", flush=True)
        start, end, _ = await generate(url, args.markets, args.snapshots)
        engine = create_engine(url, pool_size=2)
        ds = await load_dataset(engine, start, end, MarketFilter(series=["KXBENCH"]))
        await engine.dispose()
    yb, ya = matrices(ds)
    sig = signals(yb, ya, args.threshold)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before: {load}", flush=True)
    out: dict[str, Any] = {
        "snapshots": ds.rows,
        "markets": len(ds.markets),
        "threshold": args.threshold,
        "load_average_before": load,
    }
    results = [rates("ours", run_ours(ds, args.repeat, args.threshold))]
    print(results[-1], flush=True)
    results.append(rates("vectorbt", run_vectorbt(sig, ds.rows, args.repeat)))
    print(results[-1], flush=True)
    results.append(rates("backtesting.py", run_backtesting_py(sig, args.bt_markets, args.repeat)))
    print(results[-1], flush=True)
    results.append(rates("vectorbt, YES leg only", run_vectorbt(sig, ds.rows, args.repeat, yes_only=True)))
    print(results[-1], flush=True)
    out["results"] = results
    ours, vbt = results[0], results[1]
    out["ours_warm_over_vectorbt_warm"] = round(ours["warm_snapshots_per_s"] / vbt["warm_snapshots_per_s"], 2)
    out["ours_warm_over_vectorbt_warm_cpu"] = round(
        ours["warm_snapshots_per_cpu_s"] / vbt["warm_snapshots_per_cpu_s"], 2
    )
    out["ours_warm_over_backtesting_py"] = round(ours["warm_snapshots_per_s"] / results[2]["warm_snapshots_per_s"], 1)
    out["ours_warm_over_vectorbt_yes_only_warm"] = round(
        ours["warm_snapshots_per_s"] / results[3]["warm_snapshots_per_s"], 2
    )
    out["load_average_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return out


if __name__ == "__main__":
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=10_000_000)
    ap.add_argument("--bt-markets", type=int, default=10, help="markets for backtesting.py (it is the slowest)")
    ap.add_argument("--repeat", type=int, default=3, help="warm calls per library (the median is reported)")
    ap.add_argument(
        "--threshold",
        type=float,
        default=PARAMS["threshold"],
        help="the rule's move threshold (0.055: every move of 6 cents, a fill every ~65 snapshots)",
    )
    report = asyncio.run(main(ap.parse_args()))
    print(json.dumps(report, indent=2))
