"""The columnar cache of closed months gives exactly what PostgreSQL gives, and notices late writes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.cache import ColumnarCache, load_dataset_cached
from kalshi_analytics.backtests.candles_import import import_candle_files
from kalshi_analytics.backtests.data import Dataset, MarketFilter, load_dataset
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
    assert (cache.builds, cache.hits) == (3, 0)  # May, June, December; the empty months have no partition
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
    assert (cache.builds, cache.hits) == (4, 9)  # December rebuilt, May and June still good
    assert after.rows == direct.rows
    same(await load_dataset(bt_engine, START, END, f), after)
