"""Bulk-path ingest: 1,000,000 snapshot rows through ``write_snapshots``, then the same batches again.

    python -m bench.ingest [--rows 1000000] [--batch 10000] [--raw] [--sequential]

Each batch is one unit of work (committed). By default the next batch is encoded while the previous one is
being written, as the recorder's sink does; ``--sequential`` encodes and writes one after the other.
Reports rows/s for new rows (overall, and the median batch) and for a second pass over the same batches
(all duplicates: the rate at which already-stored data is recognised and skipped).
Target: >= 100,000 rows/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.common import fresh_database, median
from kalshi_analytics.db.engine import create_engine, session_factory, unit_of_work
from kalshi_analytics.recorder.bulk import (
    PreparedSnapshots,
    prepare_snapshots,
    prepare_snapshots_cooperatively,
    write_snapshots,
)
from kalshi_analytics.recorder.rows import SnapshotRow

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PRICES = [Decimal(i) / 100 for i in range(101)]
RAW = {
    "market_ticker": "KXBENCH-26NOV21-T00",
    "price_dollars": "0.4800",
    "yes_bid_dollars": "0.4500",
    "yes_ask_dollars": "0.5300",
    "volume_fp": "33896.00",
    "open_interest_fp": "20422.00",
    "dollar_volume": 16948,
    "dollar_open_interest": 10211,
    "yes_bid_size_fp": "300.00",
    "yes_ask_size_fp": "150.00",
    "last_trade_size_fp": "25.00",
    "ts_ms": 1669149841000,
    "time": "2022-11-22T20:44:01Z",
}


def make_batch(start: int, size: int, markets: int, raw: bool) -> list[SnapshotRow]:
    rows = []
    for i in range(start, start + size):
        market, step = i % markets, i // markets
        bid = PRICES[(market + step) % 90 + 5]
        rows.append(
            SnapshotRow(
                ticker=f"KXBENCH-{market:04d}",
                # Every exchange time distinct (ms apart per market), one receipt time per poll.
                ts=T0 + timedelta(seconds=5 * step, milliseconds=market),
                source="poll",
                received_at=T0 + timedelta(seconds=5 * step + 2, microseconds=137),
                yes_bid=bid,
                yes_ask=bid + PRICES[2],
                no_bid=PRICES[98] - bid,
                no_ask=PRICES[100] - bid,
                last_price=bid,
                yes_bid_size=Decimal(100 + step % 50),
                yes_ask_size=Decimal(80 + step % 30),
                volume=Decimal(step * 10),
                open_interest=Decimal(5000 + step),
                status="active",
                raw_data=RAW if raw else None,
            )
        )
    return rows


async def write_all(sessions, batches, pipelined: bool) -> tuple[float, list[float], int, int]:  # type: ignore[no-untyped-def]
    rates: list[float] = []
    new = dup = 0

    async def write(prepared: PreparedSnapshots) -> None:
        nonlocal new, dup
        t = time.perf_counter()
        async with unit_of_work(sessions) as s:
            r = await write_snapshots(s, prepared)
        rates.append(prepared.rows / (time.perf_counter() - t))
        new, dup = new + r.new, dup + r.duplicates

    t_all = time.perf_counter()
    if pipelined:
        queue: asyncio.Queue[PreparedSnapshots | None] = asyncio.Queue(maxsize=1)

        async def encoder() -> None:
            for b in batches:
                await queue.put(await prepare_snapshots_cooperatively(b))
            await queue.put(None)

        async def writer() -> None:
            while (p := await queue.get()) is not None:
                await write(p)

        await asyncio.gather(encoder(), writer())
    else:
        for b in batches:
            await write(prepare_snapshots(b))
    return time.perf_counter() - t_all, rates, new, dup


async def main(rows: int, batch: int, markets: int, raw: bool, pipelined: bool) -> None:
    async with fresh_database() as url:
        engine = create_engine(url, pool_size=1)
        sessions = session_factory(engine)
        batches = [make_batch(s, min(batch, rows - s), markets, raw) for s in range(0, rows, batch)]
        mode = "pipelined" if pipelined else "sequential"
        print(f"rows={rows:,} batch={batch:,} markets={markets:,} raw_payload={raw} mode={mode}")
        secs, rates, new, dup = await write_all(sessions, batches, pipelined)
        print(
            f"new rows:       {new:,} in {secs:.2f} s = {rows / secs:,.0f} rows/s overall, "
            f"median batch {median(rates):,.0f} rows/s (duplicates {dup})"
        )
        secs, rates, new, dup = await write_all(sessions, batches, pipelined)
        print(
            f"duplicate pass: {dup:,} skipped in {secs:.2f} s = {rows / secs:,.0f} rows/s overall, "
            f"median batch {median(rates):,.0f} rows/s (new {new})"
        )
        await engine.dispose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--markets", type=int, default=1_000)
    ap.add_argument("--raw", action="store_true", help="store a ~400-byte JSON payload per row")
    ap.add_argument("--sequential", action="store_true", help="do not overlap encoding with writing")
    a = ap.parse_args()
    asyncio.run(main(a.rows, a.batch, a.markets, a.raw, not a.sequential))
