"""The sink survives PostgreSQL going away: it holds, applies backpressure, retries, and loses nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from kalshi_analytics.db.embedded import start_embedded, stop_embedded
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.rows import SnapshotRow, TradeRow
from kalshi_analytics.recorder.sink import Sink
from tests.conftest import wait_until

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _snap(i: int) -> SnapshotRow:
    ts = T0 + timedelta(seconds=i)
    return SnapshotRow("KXOUT-1", ts, "websocket", ts, sequence=i, last_price=Decimal("0.5"), volume=Decimal(i))


def _trade(i: int) -> TradeRow:
    ts = T0 + timedelta(seconds=i)
    return TradeRow(f"tr-{i}", "KXOUT-1", ts, ts, Decimal("0.5"), Decimal("0.5"), Decimal(1), "yes", False, "websocket")


async def test_rows_put_while_the_database_is_down_are_all_written_once_it_returns(
    own_server: tuple[Path, str],
) -> None:
    pgdata, url = own_server
    engine = create_engine(url, pool_size=2)
    produced = 0
    try:
        async with Sink(
            engine,
            batch_max_rows=50,
            batch_max_seconds=0.02,
            queue_max=100,
            retry_initial_seconds=0.05,
            retry_max_seconds=0.5,
        ) as sink:
            for i in range(300):
                await sink.put(_snap(i))
                produced += 1
            await sink.flush()
            assert sink.stats.new["market_snapshots"] == 300

            await asyncio.to_thread(stop_embedded, pgdata)

            async def producer() -> None:
                nonlocal produced
                i = 300
                while True:
                    await sink.put(_snap(i) if i % 3 else _trade(i))
                    produced += 1
                    i += 1
                    await asyncio.sleep(0.001)

            task = asyncio.create_task(producer())

            def pushing_against_a_full_queue() -> bool:
                st = sink.stats
                return st.backpressure_waits > 0 and st.retries > 0 and st.queue_depth == 100

            await wait_until(pushing_against_a_full_queue, "put() to wait on a full queue while writes retry")
            stats = sink.stats
            assert stats.backpressure_waits > 0, "a full queue must make put() wait"
            assert stats.outages == 1
            assert stats.retries > 0
            assert stats.db_down_since is not None
            assert stats.queue_depth == 100, "memory stays bounded by queue_max"
            assert sink.metrics.value("kalshi_recorder_db_outages_total") == 1

            await asyncio.to_thread(start_embedded, pgdata, "kalshi")
            await asyncio.sleep(0.5)  # the producer keeps writing while the sink reconnects
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(sink.flush(), 30)
            final = sink.stats
            assert final.db_down_since is None
            assert final.rejected == {}
            assert final.done == final.put == produced
    finally:
        await engine.dispose()

    check = create_engine(url, pool_size=1)
    try:
        async with check.connect() as c:
            snaps = (await c.execute(text("SELECT count(*), count(DISTINCT ts) FROM market_snapshots"))).one()
            trades = (await c.execute(text("SELECT count(*) FROM trades"))).scalar_one()
            candles = (await c.execute(text("SELECT sum(snapshots) FROM market_candles_1m"))).scalar_one()
    finally:
        await check.dispose()
    expected_trades = sum(1 for i in range(300, produced) if i % 3 == 0)
    assert trades == expected_trades
    assert snaps == (produced - expected_trades, produced - expected_trades), "every snapshot, exactly once"
    assert candles == produced - expected_trades
