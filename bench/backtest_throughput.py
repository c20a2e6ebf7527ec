"""Backtest throughput, end to end: load from PostgreSQL + simulate + metrics + persist.

    python -m bench.backtest_throughput [--markets 1000] [--snapshots 10000000] [--python-snapshots 1000000]

Generates ``--snapshots`` rows across ``--markets`` markets server-side (``INSERT … SELECT generate_series``
into the monthly partition, one snapshot every 10 s per market, a deterministic wavy price path with noise),
then runs ``fade_overreaction`` through :func:`run_backtest` and reports:

- snapshots/s end to end (target ≥ 1,000,000/s), and the split load / simulate / metrics / persist;
- the load alternatives on the same rows: binary COPY decoded with numpy (the engine's loader) vs
  ``fetch`` with float8 casts into numpy;
- the columnar cache: the same dataset saved as ``.npz`` and read back (warm) vs loaded from PostgreSQL (cold);
- a plain-Python per-event user strategy (no ``signals``) on the first ``--python-snapshots`` rows;
- peak memory (``ru_maxrss`` of the process).

Database: BENCH_DATABASE_URL, else an embedded server in the temp directory (a fresh database either way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import fresh_database
from kalshi_analytics.backtests.cache import ColumnarCache
from kalshi_analytics.backtests.data import Dataset, MarketFilter, load_dataset, snapshot_copy_sql
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.backtests.service import (
    _insert_request,
    compute_backtest,
    get_result,
    run_backtest,
    save_outcome,
    validate_request,
)
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams
from kalshi_analytics.trading.metrics import compute_metrics

PARAMS = {"lookback": 10, "threshold": 0.06, "hold": 30, "size": 10}
STEP_SECONDS = 10


class PlainPythonFade(Strategy):
    """What a user writes without numpy: the same rule as fade_overreaction, per event, in plain Python."""

    name = "plain_python_fade"

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        if len(view) <= 10:
            return []
        bid, ask = view.tail("yes_bid", 11), view.tail("yes_ask", 11)
        move = (bid[-1] + ask[-1] - bid[0] - ask[0]) / 2
        if move > 0.04 and position.no == 0:
            return [OrderIntent("no", "buy", _TEN)]
        if move < -0.04 and position.yes == 0:
            return [OrderIntent("yes", "buy", _TEN)]
        return []


_TEN = __import__("decimal").Decimal(10)


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def generate(url: str, markets: int, snapshots: int) -> tuple[datetime, datetime, float]:
    per = snapshots // markets
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        # The previous month: closed, with its partition (the migration creates it), so the cache applies.
        start = await drv.fetchval(
            "SELECT date_trunc('month', (now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'"
        )
        t0 = time.perf_counter()
        await drv.execute(
            "INSERT INTO markets (ticker, event_ticker, series_ticker, category, status, result, close_time) "
            "SELECT format('KXBENCH-%s', lpad(i::text, 5, '0')), format('KXBENCHEV-%s', i / 10), 'KXBENCH', "
            "'Bench', 'finalized', CASE WHEN i % 2 = 0 THEN 'yes' ELSE 'no' END, "
            "$1::timestamptz + make_interval(secs => $2::int * $3::int) FROM generate_series(0, $4::int - 1) AS i",
            start,
            per,
            STEP_SECONDS,
            markets,
        )
        partition = f"market_snapshots_y{start:%Y}m{start:%m}"
        # One INSERT per 100 markets keeps each statement's memory small.
        for lo in range(0, markets, 100):
            hi = min(lo + 100, markets)
            await drv.execute(
                f"INSERT INTO {partition} (ticker, ts, source, received_at, yes_bid, yes_ask, no_bid, no_ask, "
                "last_price, yes_bid_size, yes_ask_size, volume) "
                "SELECT format('KXBENCH-%s', lpad(i::text, 5, '0')), ts, 'poll', ts, b, b + 0.01, 0.99 - b, 1 - b, "
                "b, 100 + (j % 7) * 50, 80 + (j % 5) * 40, j "
                "FROM generate_series($1::int, $2::int - 1) AS i, generate_series(0, $3::int - 1) AS j, "
                "LATERAL (SELECT $4::timestamptz + make_interval(secs => j * $5::int) AS ts) t, "
                "LATERAL (SELECT round(least(0.97, greatest(0.02, 0.5 + 0.3 * sin(j / 300.0 + i) "
                "+ 0.08 * sin(j / 23.0 + 2 * i) + 0.02 * (random() - 0.5)))::numeric, 2) AS b) p",
                lo,
                hi,
                per,
                start,
                STEP_SECONDS,
            )
            print(
                f"  generated {hi}/{markets} markets ({hi * per:,} rows, {time.perf_counter() - t0:.0f} s)", flush=True
            )
        await drv.execute(f"ANALYZE {partition}")
        await drv.execute("ANALYZE markets")
        gen = time.perf_counter() - t0
    await engine.dispose()
    end = start + (per * STEP_SECONDS + 60) * __import__("datetime").timedelta(seconds=1)
    return start, end, gen


async def fetch_float8(url: str, start: datetime, end: datetime, tickers: list[str]) -> float:
    """The alternative loader: asyncpg ``fetch`` with float8 casts, then numpy arrays."""
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        t0 = time.perf_counter()
        rows = await drv.fetch(snapshot_copy_sql(start, end), tickers)
        cols = list(zip(*rows, strict=True)) if rows else []
        arrays = [np.asarray(c) for c in cols]
        elapsed = time.perf_counter() - t0
        del rows, cols, arrays
    await engine.dispose()
    return elapsed


def subset(ds: Dataset, rows: int) -> Dataset:
    """The first markets of ``ds`` holding about ``rows`` snapshots."""
    k = int(np.searchsorted(ds.offsets, rows, side="left"))
    k = max(1, min(k, len(ds.markets)))
    n = int(ds.offsets[k])
    return Dataset(
        ds.markets[:k],
        ds.offsets[: k + 1],
        ds.ts_us[:n],
        ds.source[:n],
        {c: v[:n] for c, v in ds.columns.items()},
        ds.start,
        ds.end,
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_database() as url:
        print(f"generating {args.snapshots:,} snapshots across {args.markets:,} markets ...", flush=True)
        start, end, gen_s = await generate(url, args.markets, args.snapshots)
        engine = create_engine(url, pool_size=2)
        req = validate_request("fade_overreaction", PARAMS, start, end, market_filter=MarketFilter(series=["KXBENCH"]))
        # 1. End to end through the service: load + simulate + metrics + persist.
        t0 = time.perf_counter()
        rid = await run_backtest(engine, req)
        e2e = time.perf_counter() - t0
        res = await get_result(engine, rid)
        assert res.metrics is not None
        rows = int(res.snapshots_processed or 0)
        timings = res.metrics["timings"]
        # 1b. With the columnar cache: cold (builds the month file), then warm.
        cache_dir = tempfile.mkdtemp(prefix="ka-bench-cache-")
        cache = ColumnarCache(Path(cache_dir))
        t0 = time.perf_counter()
        await run_backtest(engine, req, cache=cache)
        cache_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        rid_w = await run_backtest(engine, req, cache=cache)
        cache_warm = time.perf_counter() - t0
        warm_res = await get_result(engine, rid_w)
        assert warm_res.metrics is not None
        assert warm_res.total_pnl == res.total_pnl
        warm_timings = warm_res.metrics["timings"]
        shutil.rmtree(cache_dir, ignore_errors=True)
        # 2. The same, phase by phase (second run: PostgreSQL's cache is warm either way).
        t0 = time.perf_counter()
        ds = await load_dataset(engine, start, end, req.market_filter)
        load_s = time.perf_counter() - t0
        out = await compute_backtest(engine, req, dataset=ds)
        t0 = time.perf_counter()
        rid2 = await _insert_request(engine, req, out.strategy_version, out.params, "running")
        await save_outcome(engine, rid2, out)
        persist_s = time.perf_counter() - t0
        # 3. Loader alternative: fetch with float8 casts.
        # (on the slice of markets the plain-Python run uses: asyncpg Records of 10 M rows would need ~5 GB)
        part = subset(ds, args.python_snapshots)
        fetch_s = await fetch_float8(url, start, end, [m.ticker for m in part.markets])
        t0 = time.perf_counter()
        part_copy = await load_dataset(engine, start, end, MarketFilter(tickers=[m.ticker for m in part.markets]))
        part_copy_s = time.perf_counter() - t0
        assert part_copy.rows == part.rows
        # 4. Columnar cache: .npz of the dataset, read back.
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "cache.npz")
            t0 = time.perf_counter()
            ds.save(path)
            save_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            warm = Dataset.from_npz(path, ds.markets, start, end)
            warm_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            sim = simulate(
                warm,
                __import__("kalshi_analytics.strategies", fromlist=["x"]).get_strategy("fade_overreaction"),
                req_params(req),
            )
            compute_metrics(sim)
            warm_total = warm_s + time.perf_counter() - t0
            cache_mb = os.path.getsize(path) / 2**20  # noqa: ASYNC240 - a stat of a local temp file
        # 5. Plain-Python per-event strategy on a slice.
        t0 = time.perf_counter()
        py = simulate(part, PlainPythonFade(), StrategyParams(), EngineConfig())
        py_s = time.perf_counter() - t0
        # 6. The built-in through its per-event hook (same rule, engine's own view API) on the same slice.
        from kalshi_analytics.strategies import get_strategy

        fade = get_strategy("fade_overreaction")
        t0 = time.perf_counter()
        simulate(part, fade, req_params(req), EngineConfig(vectorised=False))
        hook_s = time.perf_counter() - t0
        await engine.dispose()
    report = {
        "markets": args.markets,
        "snapshots": rows,
        "generate_seconds": round(gen_s, 2),
        "end_to_end_seconds": round(e2e, 3),
        "end_to_end_snapshots_per_s": round(rows / e2e),
        "e2e_split": {
            "load_s": round(timings["load_seconds"], 3),
            "simulate_s": round(timings["simulate_seconds"], 3),
            "metrics_and_persist_s": round(e2e - timings["load_seconds"] - timings["simulate_seconds"], 3),
        },
        "second_run": {
            "load_s": round(load_s, 3),
            "load_rows_per_s": round(rows / load_s),
            "simulate_s": round(out.sim.simulate_seconds, 3),
            "simulate_rows_per_s": round(rows / out.sim.simulate_seconds),
            "metrics_s": round(out.metrics_seconds, 3),
            "persist_s": round(persist_s, 3),
            "executions": len(out.sim.executions),
            "fills": out.sim.fills,
        },
        "e2e_with_cache": {
            "cold_s (builds the month file)": round(cache_cold, 3),
            "cold_snapshots_per_s": round(rows / cache_cold),
            "warm_s": round(cache_warm, 3),
            "warm_snapshots_per_s": round(rows / cache_warm),
            "warm_load_s": round(warm_timings["load_seconds"], 3),
            "warm_simulate_s": round(warm_timings["simulate_seconds"], 3),
        },
        "loader_on_slice": {
            "rows": part.rows,
            "binary_copy_numpy_rows_per_s": round(part.rows / part_copy_s),
            "fetch_float8_rows_per_s": round(part.rows / fetch_s),
        },
        "npz_roundtrip": {
            "npz_mb": round(cache_mb, 1),
            "save_s": round(save_s, 3),
            "warm_load_s": round(warm_s, 3),
            "warm_rows_per_s": round(rows / warm_s),
            "warm_end_to_end_s (no persist)": round(warm_total, 3),
            "warm_snapshots_per_s": round(rows / warm_total),
        },
        "plain_python_per_event": {
            "snapshots": part.rows,
            "seconds": round(py_s, 3),
            "snapshots_per_s": round(part.rows / py_s),
            "fills": py.fills,
        },
        "builtin_via_per_event_hook": {"snapshots": part.rows, "snapshots_per_s": round(part.rows / hook_s)},
        "peak_rss_mb": round(maxrss_mb()),
        "pnl": str(res.total_pnl),
        "trades": res.num_trades,
    }
    return report


def req_params(req: Any) -> StrategyParams:
    from kalshi_analytics.backtests.service import resolve

    return resolve(req)[1]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=10_000_000)
    ap.add_argument("--python-snapshots", type=int, default=1_000_000)
    ap.add_argument("--out", default="bench/results/backtest_throughput.json")
    a = ap.parse_args()
    rep = asyncio.run(main(a))
    rep["at"] = datetime.now(UTC).isoformat()
    print(json.dumps(rep, indent=2))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rep, indent=2))
