"""Loading snapshots as columns straight from PostgreSQL (the path without the columnar cache)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import MarketFilter, load_dataset
from kalshi_analytics.recorder.rows import MarketRow, SnapshotRow
from kalshi_analytics.recorder.sink import Sink

T0 = datetime(2026, 4, 6, 12, 0, tzinfo=UTC)
#: Two tickers with the same 32-bit hashtext (found by a search over KXHASH-1..300000; checked below).
TWINS = ("KXHASH-3784", "KXHASH-170244")


async def test_tickers_whose_32_bit_hashes_collide_load_as_two_markets(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        hashes = (await conn.execute(text("SELECT hashtext(:a), hashtext(:b)"), {"a": TWINS[0], "b": TWINS[1]})).one()
    assert hashes[0] == hashes[1]
    async with Sink(engine, batch_max_seconds=0.02) as sink:
        for k, t in enumerate(TWINS):
            await sink.put(MarketRow(t, event_ticker=f"EV-{t}", status="active"))
            for i in range(5 + k):
                ts = T0 + timedelta(minutes=i)
                await sink.put(SnapshotRow(t, ts, "poll", ts, yes_bid=D("0.30") + k * D("0.40"), yes_ask=D("0.32")))
        await sink.flush()
    ds = await load_dataset(engine, T0, T0 + timedelta(hours=1), MarketFilter(tickers=list(TWINS)))
    assert sorted(m.ticker for m in ds.markets) == sorted(TWINS)
    for k, m in enumerate(ds.markets):
        rows = slice(int(ds.offsets[k]), int(ds.offsets[k + 1]))
        expected_bid = 0.30 + TWINS.index(m.ticker) * 0.40
        assert len(ds.ts_us[rows]) == 5 + TWINS.index(m.ticker)
        assert set(ds.columns["yes_bid"][rows].round(4)) == {round(expected_bid, 4)}
