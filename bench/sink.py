"""Sink throughput: rows/s from ``put`` to commit, snapshots (with their 1-minute candles) and trades.

    python -m bench.sink --rows 200000 --batch 5000 --markets 1000 --every 5

Snapshots go through the full unit of work: COPY (idempotent), candle upsert, NOTIFY. Trades are written through
a COPY into a staging table and ``INSERT … ON CONFLICT DO NOTHING RETURNING``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.common import fresh_database
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.rows import SnapshotRow, TradeRow
from kalshi_analytics.recorder.sink import Sink

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def snapshots(n: int, markets: int, every: float) -> list[SnapshotRow]:
    """Each market changes every ``every`` seconds (a 5 s poll of changed markets: 12 snapshots per candle)."""
    out = []
    for i in range(n):
        ts = T0 + timedelta(seconds=every * (i // markets), microseconds=i % markets)
        bid = Decimal(30 + i % 40) / 100
        out.append(
            SnapshotRow(
                f"KXBENCH-{i % markets}",
                ts,
                "websocket",
                ts,
                sequence=i,
                yes_bid=bid,
                yes_ask=bid + Decimal("0.02"),
                last_price=bid + Decimal("0.01"),
                volume=Decimal(i),
                open_interest=Decimal(1000),
                status="active",
            )
        )
    return out


def trades(n: int, markets: int) -> list[TradeRow]:
    return [
        TradeRow(
            f"bench-{i}",
            f"KXBENCH-{i % markets}",
            T0 + timedelta(milliseconds=50 * i),
            T0,
            Decimal("0.42"),
            Decimal("0.58"),
            Decimal(3),
            "yes",
            False,
            "websocket",
        )
        for i in range(n)
    ]


async def run(rows: list[SnapshotRow] | list[TradeRow], url: str, batch: int) -> tuple[float, dict[str, int]]:
    engine = create_engine(url, pool_size=2)
    try:
        async with Sink(engine, batch_max_rows=batch, batch_max_seconds=0.2, queue_max=batch * 4) as sink:
            started = time.perf_counter()
            for r in rows:
                await sink.put(r)
            await sink.flush()
            elapsed = time.perf_counter() - started
            return elapsed, sink.stats.new
    finally:
        await engine.dispose()


async def main(n: int, batch: int, markets: int, every: float) -> None:
    async with fresh_database() as url:
        snaps = snapshots(n, markets, every)
        elapsed, new = await run(snaps, url, batch)
        print(f"snapshots: {n} rows in {elapsed:.2f} s = {n / elapsed:,.0f} rows/s put→commit ({new})")
        tr = trades(n // 4, markets)
        elapsed, new = await run(tr, url, batch)
        print(f"trades:    {len(tr)} rows in {elapsed:.2f} s = {len(tr) / elapsed:,.0f} rows/s put→commit ({new})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--markets", type=int, default=1_000)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between two snapshots of one market")
    a = ap.parse_args()
    asyncio.run(main(a.rows, a.batch, a.markets, a.every))
