"""The columnar cache — every month, the one being written included — gives exactly what PostgreSQL gives."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests import cache as cache_module
from kalshi_analytics.backtests.cache import ColumnarCache, load_dataset_cached
from kalshi_analytics.backtests.candles_import import import_candle_files
from kalshi_analytics.backtests.data import Dataset, MarketFilter, load_dataset
from kalshi_analytics.backtests.service import BacktestOutcome, compute_backtest, validate_request
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.recorder.sink import Sink

START, END = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 12, 26, tzinfo=UTC)  # partial last month


def same(a: Dataset, b: Dataset) -> None:
    assert [m.ticker for m in a.markets] == [m.ticker for m in b.markets]
    assert [m.result for m in a.markets] == [m.result for m in b.markets]
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.ts_us, b.ts_us)
    assert np.array_equal(a.source, b.source)
    for c in a.columns:
        assert np.array_equal(a.columns[c], b.columns[c], equal_nan=True), c


async def test_cached_months_equal_postgres_and_late_writes_invalidate(
    bt_engine: AsyncEngine, nba_files: list[Path], tmp_path: Path
) -> None:
    await import_candle_files(bt_engine, nba_files)
    async with bt_engine.begin() as c:  # give the NBA months partitions of their own (rows move out of default)
        for month in ("2025-05-01", "2025-06-01", "2025-12-01"):
            await c.execute(text(f"SELECT ka_ensure_monthly_partitions('market_snapshots', '{month}', 1)"))
    f = MarketFilter(series=["KXNBAGAME"])
    direct = await load_dataset(bt_engine, START, END, f)
    cache = ColumnarCache(tmp_path)
    cold = await load_dataset_cached(bt_engine, START, END, f, cache)
    assert (cache.builds, cache.hits) == (3, 0)  # May, June, December; the other months hold no snapshot
    same(direct, cold)
    warm = await load_dataset_cached(bt_engine, START, END, f, cache)
    assert (cache.builds, cache.hits) == (3, 3)
    same(direct, warm)
    dec = (datetime(2025, 12, 14, tzinfo=UTC), datetime(2025, 12, 26, tzinfo=UTC))  # one month: no merge sort
    same(await load_dataset(bt_engine, *dec, f), await load_dataset_cached(bt_engine, *dec, f, cache))
    one = await load_dataset_cached(bt_engine, START, END, MarketFilter(tickers=["KXNBAGAME-25DEC25CLENYK-NYK"]), cache)
    same(await load_dataset(bt_engine, START, END, MarketFilter(tickers=["KXNBAGAME-25DEC25CLENYK-NYK"])), one)

    # a late backfill into December (of a market without a markets row, so other tests' games stay as they are)
    ts = datetime(2025, 12, 25, 23, 59, 59, tzinfo=UTC)
    async with Sink(bt_engine, batch_max_seconds=0.05) as sink:
        row = SnapshotRow("KXNBAGAME-LATE-UNLISTED", ts, "poll", ts, yes_bid=D("0.5"), yes_ask=D("0.51"))
        await sink.put(row)
        await sink.flush()
    after = await load_dataset_cached(bt_engine, START, END, f, cache)
    # The row's receipt time is a year before the rows cached, so reading what was received since cannot find it:
    # the counts disagree and December is read again in full; May and June still good.
    assert (cache.builds, cache.updates, cache.hits) == (4, 0, 9)
    assert after.rows == direct.rows
    same(await load_dataset(bt_engine, START, END, f), after)


# ----------------------------------------------------------------------------------------- the open month
async def _write_rows(engine: AsyncEngine, rows: list[tuple[str, datetime, str, datetime, float]]) -> None:
    async with engine.begin() as c:
        await c.execute(
            text(
                "INSERT INTO market_snapshots (ticker, ts, source, received_at, yes_bid, yes_ask, yes_bid_size, "
                "yes_ask_size) VALUES (:t, :ts, :src, :rcv, :b, :b + 0.01, 50, 40)"
            ),
            [{"t": t, "ts": ts, "src": src, "rcv": rcv, "b": D(str(b))} for t, ts, src, rcv, b in rows],
        )


def _price(i: int, k: int) -> float:
    return round(0.5 + 0.3 * float(np.sin(i / 7 + k)), 2)


def _outcome(out: BacktestOutcome) -> tuple[object, ...]:
    sim = out.sim
    metrics = {k: v for k, v in out.metrics.items() if k not in ("timings", "cache")}
    trades = [
        (e.ticker, e.side, e.size, e.entry_ts, e.entry_price, e.exit_ts, e.exit_price, e.pnl) for e in sim.executions
    ]
    return (
        sim.snapshots,
        sim.total_pnl,
        sim.fees_paid,
        trades,
        sim.curve.ts_us.tolist(),
        sim.curve.equity.tolist(),
        metrics,
    )


async def test_open_month_updates_incrementally_and_runs_exactly_as_uncached(
    bt_engine: AsyncEngine, tmp_path: Path
) -> None:
    """Rows recorded minutes ago, in the month still being written: the cache fills, takes later rows (a late row
    with an older ts and a new market's among them) by reading only what was received since, and every run
    gives exactly what a run straight from PostgreSQL gives."""
    now = datetime.now(UTC).replace(microsecond=0)
    month0 = datetime(now.year, now.month, 1, tzinfo=UTC)
    first = max(month0, now - timedelta(hours=2))
    step = (now - first) / 300
    tickers = ["KXOPENM-A", "KXOPENM-B", "KXOPENM-C"]
    async with bt_engine.begin() as c:
        await c.execute(
            text(
                "INSERT INTO markets (ticker, event_ticker, series_ticker, status, close_time) "
                "VALUES (:t, 'KXOPENM-EV', 'KXOPENM', 'active', :close)"
            ),
            [{"t": t, "close": now + timedelta(days=1)} for t in tickers],
        )
    rcv = now - timedelta(minutes=30)
    await _write_rows(
        bt_engine,
        [(t, first + i * step, "poll", rcv, _price(i, k)) for k, t in enumerate(tickers[:2]) for i in range(200)],
    )
    req = validate_request(
        "fade_overreaction", {"lookback": 3, "threshold": 0.05, "hold": 4}, first, now + timedelta(hours=1),
        market_filter=MarketFilter(series=["KXOPENM"]),
    )  # fmt: skip
    cache = ColumnarCache(tmp_path)

    async def both() -> tuple[object, ...]:
        cached = await compute_backtest(bt_engine, req, cache=cache)
        direct = await compute_backtest(bt_engine, req)
        assert _outcome(cached) == _outcome(direct)
        return _outcome(cached)

    one = await both()
    assert (cache.builds, cache.updates, cache.hits) == (1, 0, 0)
    assert one[0] == 400
    assert one[3]
    # Later: more rows of A and B, a late row of A between two cached ones (an older ts, received now), a row of
    # A at a cached ts from another source, and the first rows of C.
    rcv2 = now - timedelta(minutes=2)
    late = [
        ("KXOPENM-A", first + 50.5 * step, "websocket", rcv2, 0.93),
        ("KXOPENM-A", first + 60 * step, "websocket", rcv2, 0.07),
    ]
    more = [(t, first + i * step, "poll", rcv2, _price(i, k)) for k, t in enumerate(tickers) for i in range(200, 300)]
    await _write_rows(bt_engine, late + more)
    two = await both()
    assert (cache.builds, cache.updates, cache.hits, cache.rows_added) == (1, 1, 0, 302)
    assert two[0] == 702
    assert two != one
    # Nothing new: the files are used as they are.
    assert await both() == two
    assert (cache.builds, cache.updates, cache.hits) == (1, 1, 1)
    # A row that committed long after it was received (held through an outage): reading what was received since
    # the cached rows cannot find it, the counts disagree, and the month is read again in full.
    await _write_rows(bt_engine, [("KXOPENM-B", first + 10.5 * step, "poll", rcv - timedelta(hours=3), 0.95)])
    three = await both()
    assert (cache.builds, cache.updates, cache.hits) == (2, 1, 1)
    assert three[0] == 703
    assert three != two


async def test_an_update_whose_files_another_process_removed_starts_over(
    bt_engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes updating one month: the slower one finds the generation it was reading gone, and reads the
    month again rather than failing or keeping half an update."""
    now = datetime.now(UTC).replace(microsecond=0)
    first = max(datetime(now.year, now.month, 1, tzinfo=UTC), now - timedelta(hours=1))
    step = (now - first) / 100
    async with bt_engine.begin() as c:
        await c.execute(
            text(
                "INSERT INTO markets (ticker, event_ticker, series_ticker, status) "
                "VALUES ('KXRACE-A', 'KXRACE-EV', 'KXRACE', 'active')"
            )
        )
    rcv = now - timedelta(minutes=5)
    await _write_rows(bt_engine, [("KXRACE-A", first + i * step, "poll", rcv, _price(i, 0)) for i in range(50)])
    f = MarketFilter(series=["KXRACE"])
    window = (first, now + timedelta(hours=1))
    cache = ColumnarCache(tmp_path)
    await load_dataset_cached(bt_engine, *window, f, cache)
    await _write_rows(bt_engine, [("KXRACE-A", first + i * step, "poll", now, _price(i, 0)) for i in range(50, 60)])
    real_write = cache_module._write
    calls = []

    def other_process_cleaned_up(directory: Path, m0: datetime, month: object) -> object:
        calls.append(m0)
        if len(calls) == 1:
            for old in directory.glob(f"snapshots_{m0:%Y_%m}.*"):
                if old.is_dir():
                    shutil.rmtree(old)
        return real_write(directory, m0, month)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_module, "_write", other_process_cleaned_up)
    got = await load_dataset_cached(bt_engine, *window, f, cache)
    assert len(calls) == 2
    assert (cache.builds, cache.updates) == (2, 1)  # the update counted, then the month read in full
    same(await load_dataset(bt_engine, *window, f), got)
    assert _generations(tmp_path, first) == ([f"snapshots_{first:%Y_%m}.{_current(tmp_path, first)}"])


def _current(directory: Path, m0: datetime) -> str:
    return str(json.loads((directory / f"snapshots_{m0:%Y_%m}.json").read_text())["gen"])


def _generations(directory: Path, m0: datetime) -> list[str]:
    """The month's generation folders left on disk (one: the current, nothing half written)."""
    return [p.name for p in directory.glob(f"snapshots_{m0:%Y_%m}.*") if p.is_dir()]
