"""The notebook module reads times in the project's one grammar."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import research
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.times import TimeParseError
from tests.fixtures.app import market, ticker, write


async def test_load_snapshots_takes_relative_times(database_url: str, engine: AsyncEngine) -> None:
    t = ticker("KXRES")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    row = SnapshotRow(t, hour_ago, "poll", hour_ago, yes_bid=Decimal("0.40"), yes_ask=Decimal("0.44"))
    await write(engine, market(t), row)

    frame = await asyncio.to_thread(research.load_snapshots, "-1d", "now", tickers=[t], url=database_url)
    assert list(frame["ticker"]) == [t]
    assert frame["mid"].iloc[0] == pytest.approx(0.42)
    older = await asyncio.to_thread(research.load_snapshots, "-1w", "-2h", tickers=[t], url=database_url)
    assert older.empty

    with pytest.raises(TimeParseError, match="cannot read time 'yesterday'"):
        research.load_snapshots("yesterday", "now", tickers=[t], url=database_url)
