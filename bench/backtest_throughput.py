"""Backtest throughput end to end (load + simulate + metrics + persist), on data recorded minutes ago.

    python -m bench.backtest_throughput [--markets 1000] [--snapshots 10000000] [--repeat 3] [--extras]

Generates ``--snapshots`` rows across ``--markets`` markets server-side (``INSERT … SELECT generate_series``, one
snapshot every 10 s per market, a deterministic wavy price path with noise) ending five minutes ago — so the current
month is in the window, not only closed months. Even-numbered markets are resolved (closing at the last snapshot),
odd-numbered ones still open. Then ``fade_overreaction`` (lookback 10, threshold 0.06, hold 30, size 10) runs
through :func:`run_backtest` with $100,000 of capital (enough that nearly every intent fills; the refused ones
are reported by reason), each run in a fresh process (as a CLI run is), and reports, as medians of ``--repeat``:

- from PostgreSQL (no cache);
- with the columnar cache: cold (builds the month's files), warm with nothing changed since the last run, and
  after ``--new-minutes`` more minutes of recording (new rows for the open markets, plus late rows with older
  timestamps) — the incremental update;
- each run's split (load / simulate / the rest: metrics + persist), fills and refused intents, peak RSS.

``--extras`` adds, in this process: the loader alternatives on a slice (binary COPY decoded by numpy vs ``fetch``
with float8 casts) and a plain-Python per-event strategy on ``--python-snapshots`` rows.

Database: BENCH_DATABASE_URL, else an embedded server in the temp directory (a fresh database either way;
``--keep-database NAME`` keeps and reuses one, skipping generation when it exists).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from bench.common import fresh_database, kept_database
from kalshi_analytics.backtests.cache import ColumnarCache
from kalshi_analytics.backtests.data import Dataset, MarketFilter, load_dataset, snapshot_copy_sql
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.backtests.service import BacktestRequest, get_result, run_backtest, validate_request
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams

PARAMS = {"lookback": 10, "threshold": 0.06, "hold": 30, "size": 10}
CAPITAL = Decimal(100_000)
STEP_SECONDS = 10
_TEN = Decimal(10)


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


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_ROWS_SQL = (
    "INSERT INTO market_snapshots (ticker, ts, source, received_at, yes_bid, yes_ask, no_bid, no_ask, "
    "last_price, yes_bid_size, yes_ask_size, volume) "
    "SELECT format('KXBENCH-%s', lpad(i::text, 5, '0')), ts, 'poll', {received}, b, b + 0.01, 0.99 - b, 1 - b, "
    "b, 100 + (j % 7) * 50, 80 + (j % 5) * 40, j "
    "FROM generate_series($1::int, $2::int - 1) AS i, generate_series($3::int, $4::int - 1) AS j, "
    "LATERAL (SELECT $5::timestamptz + make_interval(secs => j * $6::int) AS ts) t, "
    "LATERAL (SELECT round(least(0.97, greatest(0.02, 0.5 + 0.3 * sin(j / 300.0 + i) "
    "+ 0.08 * sin(j / 23.0 + 2 * i) + 0.02 * (random() - 0.5)))::numeric, 2) AS b) p WHERE {where}"
)


async def generate(url: str, markets: int, snapshots: int) -> tuple[datetime, datetime, float]:
    """The markets and their snapshots, the last one five minutes ago; returns the first snapshot's time, the end
    of a window covering the data and a day more, and the seconds generation took."""
    per = snapshots // markets
    data_end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    start = data_end - timedelta(seconds=per * STEP_SECONDS)
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        t0 = time.perf_counter()
        await drv.execute(
            "INSERT INTO markets (ticker, event_ticker, series_ticker, category, status, result, close_time) "
            "SELECT format('KXBENCH-%s', lpad(i::text, 5, '0')), format('KXBENCHEV-%s', i / 10), 'KXBENCH', "
            "'Bench', CASE WHEN i % 2 = 0 THEN 'finalized' ELSE 'active' END, "
            "CASE WHEN i % 2 = 1 THEN NULL WHEN i % 4 = 0 THEN 'yes' ELSE 'no' END, "
            "CASE WHEN i % 2 = 0 THEN $1::timestamptz ELSE $1::timestamptz + interval '7 days' END "
            "FROM generate_series(0, $2::int - 1) AS i",
            data_end,
            markets,
        )
        # One INSERT per 100 markets keeps each statement's memory small.
        for lo in range(0, markets, 100):
            hi = min(lo + 100, markets)
            sql = _ROWS_SQL.format(received="ts", where="true")
            await drv.execute(sql, lo, hi, 0, per, start, STEP_SECONDS)
            took = time.perf_counter() - t0
            print(f"  generated {hi}/{markets} markets ({hi * per:,} rows, {took:.0f} s)", flush=True)
        await drv.execute("VACUUM ANALYZE market_snapshots")
        await drv.execute("ANALYZE markets")
        gen = time.perf_counter() - t0
    await engine.dispose()
    return start, data_end + timedelta(days=1), gen


async def record_more(url: str, markets: int, first_j: int, count: int, start: datetime, late: int) -> int:
    """``count`` more snapshots of every open (odd-numbered) market after its last, received now, and for every
    twentieth of them a late row ``late`` seconds past an hour into the data (received now too, as a row repaired or
    delivered late is). Returns the rows added."""
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        sql = _ROWS_SQL.format(received="now()", where="i % 2 = 1")
        status = await drv.execute(sql, 0, markets, first_j, first_j + count, start, STEP_SECONDS)
        repaired = await drv.execute(
            "INSERT INTO market_snapshots (ticker, ts, source, received_at, yes_bid, yes_ask, yes_bid_size, "
            "yes_ask_size) SELECT format('KXBENCH-%s', lpad(i::text, 5, '0')), "
            "$2::timestamptz + make_interval(secs => 3600 + $3::int), 'websocket', now(), 0.5, 0.51, 10, 10 "
            "FROM generate_series(1, $1::int - 1, 20) AS i ON CONFLICT DO NOTHING",
            markets,
            start,
            late,
        )
    await engine.dispose()
    return int(status.split()[-1]) + int(repaired.split()[-1])


def request(start: datetime, end: datetime) -> BacktestRequest:
    return validate_request(
        "fade_overreaction",
        PARAMS,
        start,
        end,
        market_filter=MarketFilter(series=["KXBENCH"]),
        initial_capital=CAPITAL,
    )


# ------------------------------------------------------------------------------------------ one run, own process
async def one_run(url: str, start: datetime, end: datetime, cache_dir: str | None) -> dict[str, Any]:
    engine = create_engine(url, pool_size=3)
    cache = ColumnarCache(Path(cache_dir)) if cache_dir else None
    t0 = time.perf_counter()
    rid = await run_backtest(engine, request(start, end), cache=cache)
    seconds = time.perf_counter() - t0
    res = await get_result(engine, rid)
    await engine.dispose()
    m = res.metrics or {}
    rows = int(res.snapshots_processed or 0)
    load, sim = m["timings"]["load_seconds"], m["timings"]["simulate_seconds"]
    return {
        "seconds": seconds,
        "snapshots": rows,
        "snapshots_per_s": rows / seconds,
        "load_s": load,
        "simulate_s": sim,
        "rest_s": seconds - load - sim,
        "fills": m["num_fills"],
        "executions": res.num_trades,
        "refused": m["skipped_intents"],
        "pnl": str(res.total_pnl),
        "cache": cache.stats() if cache else None,
        "peak_rss_mb": maxrss_mb(),
    }


def run_child(url: str, start: datetime, end: datetime, cache_dir: str | None) -> dict[str, Any]:
    """:func:`one_run` in a fresh interpreter (nothing warm but the files and PostgreSQL's buffers)."""
    cmd = [sys.executable, "-m", "bench.backtest_throughput", "--one", url, start.isoformat(), end.isoformat()]
    out = subprocess.run([*cmd, cache_dir or ""], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs' figures, the figures of each, and the largest peak RSS."""
    keys = ("seconds", "snapshots_per_s", "load_s", "simulate_s", "rest_s")
    out: dict[str, Any] = {k: round(median(r[k] for r in runs), 3) for k in keys}
    out["snapshots_per_s"] = round(out["snapshots_per_s"])
    out["peak_rss_mb"] = round(max(r["peak_rss_mb"] for r in runs))
    last = runs[-1]
    for key in ("snapshots", "fills", "executions", "refused", "pnl"):
        out[key] = last[key]
    out["each_s"] = [round(r["seconds"], 3) for r in runs]
    out["cache"] = last["cache"]
    return out


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ---------------------------------------------------------------------------------------------------- extras
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


async def extras(url: str, start: datetime, end: datetime, per: int, rows: int) -> dict[str, Any]:
    """On the first markets holding about ``rows`` snapshots (``per`` each)."""
    tickers = [f"KXBENCH-{i:05d}" for i in range(max(1, rows // per))]
    engine = create_engine(url, pool_size=2)
    t0 = time.perf_counter()
    part: Dataset = await load_dataset(engine, start, end, MarketFilter(tickers=tickers))
    copy_s = time.perf_counter() - t0
    await engine.dispose()
    fetch_s = await fetch_float8(url, start, end, tickers)
    t0 = time.perf_counter()
    py = simulate(part, PlainPythonFade(), StrategyParams(), EngineConfig(initial_capital=CAPITAL))
    py_s = time.perf_counter() - t0
    return {
        "slice_rows": part.rows,
        "binary_copy_numpy_rows_per_s": round(part.rows / copy_s),
        "fetch_float8_rows_per_s": round(part.rows / fetch_s),
        "plain_python_per_event_snapshots_per_s": round(part.rows / py_s),
        "plain_python_fills": py.fills,
    }


# ------------------------------------------------------------------------------------------------------ main
async def prepare(args: argparse.Namespace, url: str, created: bool) -> tuple[datetime, datetime, float]:
    if created:
        print(f"generating {args.snapshots:,} snapshots across {args.markets:,} markets ...", flush=True)
        return await generate(url, args.markets, args.snapshots)
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        first, last = await drv.fetchrow("SELECT min(ts), max(ts) FROM market_snapshots")
    await engine.dispose()
    return first, last + timedelta(days=1), 0.0


def measure(args: argparse.Namespace, url: str, start: datetime, end: datetime) -> dict[str, Any]:
    report: dict[str, Any] = {"load_average_before": load_average()}
    print("from PostgreSQL (no cache) ...", flush=True)
    report["postgres"] = summary([run_child(url, start, end, None) for _ in range(args.pg_repeat)])
    cache_dir = tempfile.mkdtemp(prefix="ka-bench-cache-")
    try:
        print("columnar cache: cold, then warm ...", flush=True)
        report["cache_cold"] = summary([run_child(url, start, end, cache_dir)])
        report["cache_warm_unchanged"] = summary([run_child(url, start, end, cache_dir) for _ in range(args.repeat)])
        print(f"columnar cache after {args.new_minutes} more minutes of recording ...", flush=True)
        per = args.snapshots // args.markets
        count = args.new_minutes * 60 // STEP_SECONDS
        runs, added = [], []
        for r in range(args.repeat):
            added.append(asyncio.run(record_more(url, args.markets, per + r * count, count, start, r + 1)))
            runs.append(run_child(url, start, end, cache_dir))
        report["cache_after_new_rows"] = summary(runs) | {"rows_recorded_before_each_run": added}
        report["cache_warm_after_update"] = summary([run_child(url, start, end, cache_dir)])
        print("from PostgreSQL again: the cached runs must give exactly its result ...", flush=True)
        report["postgres_after_updates"] = summary([run_child(url, start, end, None)])
        same = ("snapshots", "fills", "executions", "refused", "pnl")
        pairs = [("postgres", "cache_cold"), ("postgres", "cache_warm_unchanged")]
        pairs.append(("cache_after_new_rows", "cache_warm_after_update"))  # the last update run: the same rows
        for before, after in pairs:
            assert all(report[before][k] == report[after][k] for k in same), (before, after)
        assert all(report["postgres_after_updates"][k] == report["cache_warm_after_update"][k] for k in same)
        files = [p for p in Path(cache_dir).rglob("*") if p.is_file()]
        report["cache_files_mb"] = round(sum(p.stat().st_size for p in files) / 2**20)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    report["load_average_after"] = load_average()
    return report


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.keep_database:
        url, created = await kept_database(args.keep_database)
        start, end, gen_s = await prepare(args, url, created)
        report = await asyncio.to_thread(measure, args, url, start, end)
        if args.extras:
            report["extras"] = await extras(url, start, end, args.snapshots // args.markets, args.python_snapshots)
    else:
        async with fresh_database() as url:
            start, end, gen_s = await prepare(args, url, True)
            report = await asyncio.to_thread(measure, args, url, start, end)
            if args.extras:
                report["extras"] = await extras(url, start, end, args.snapshots // args.markets, args.python_snapshots)
    report = {"markets": args.markets, "snapshots": args.snapshots, "generate_s": round(gen_s, 1), **report}
    return report


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        _, _, url_, s_, e_, c_ = sys.argv
        res_ = asyncio.run(one_run(url_, datetime.fromisoformat(s_), datetime.fromisoformat(e_), c_ or None))
        print(json.dumps(res_))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per cached scenario (medians reported)")
    ap.add_argument("--pg-repeat", type=int, default=1, help="runs straight from PostgreSQL (~25 s each at 10 M)")
    ap.add_argument("--new-minutes", type=int, default=5, help="minutes of recording added before each update run")
    ap.add_argument("--extras", action="store_true", help="loader alternatives and a plain-Python strategy")
    ap.add_argument("--python-snapshots", type=int, default=1_000_000)
    ap.add_argument("--keep-database", metavar="NAME", help="keep (and reuse) the generated database NAME")
    ap.add_argument("--out", default="bench/results/backtest_throughput.json")
    a = ap.parse_args()
    rep = asyncio.run(main(a))
    rep["at"] = datetime.now(UTC).isoformat()
    print(json.dumps(rep, indent=2))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rep, indent=2))
