"""No look-ahead through the close time: a strategy sees, at each snapshot, the close time known then.

The recorder keeps each close time a market is given (``market_close_times``); an early close is news from the
moment it is announced. Here a market scheduled to close at 18:00 is closed early at 14:30, announced at 14:00;
``favourite_longshot`` (enter 60 minutes before the close) must enter at 14:00, when the news came, not at 13:30
(the new close minus an hour, which it could not know then).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import MarketFilter, load_dataset
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.recorder.rows import MarketRow, SnapshotRow
from kalshi_analytics.recorder.sink import Sink
from kalshi_analytics.strategies import get_strategy
from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SCHEDULED = T0 + timedelta(hours=6)  # 18:00
ANNOUNCED = T0 + timedelta(hours=2)  # 14:00
EARLY = T0 + timedelta(hours=2, minutes=30)  # 14:30


async def _early_close_market(engine: AsyncEngine) -> str:
    ticker = f"KXEARLY-{uuid.uuid4().hex[:8].upper()}"
    async with Sink(engine, batch_max_seconds=0.02) as sink:
        await sink.put(MarketRow(ticker, event_ticker="KXEARLY-1", status="finalized", close_time=EARLY, result="yes"))
        for i in range(int((EARLY - T0).total_seconds() // 60)):  # one snapshot a minute until the close
            ts = T0 + timedelta(minutes=i)
            await sink.put(SnapshotRow(ticker, ts, "poll", ts, yes_bid=D("0.89"), yes_ask=D("0.91")))
        await sink.flush()
    async with engine.begin() as c:  # the history as the recorder would have learned it, in data time
        await c.execute(text("DELETE FROM market_close_times WHERE ticker = :t"), {"t": ticker})
        for known, close in ((T0 - timedelta(days=1), SCHEDULED), (ANNOUNCED, EARLY)):
            await c.execute(
                text("INSERT INTO market_close_times VALUES (:t, :k, :c)"), {"t": ticker, "k": known, "c": close}
            )
    return ticker


class CloseWatcher(Strategy):
    """Records the close time it is shown at each snapshot."""

    name = "close_watcher"

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None]] = []

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        self.seen.append((float(view.ts[-1]), view.close_time))
        return []


@pytest.mark.parametrize("vectorised", [False, True])
async def test_an_early_close_is_seen_from_its_announcement_not_before(
    bt_engine: AsyncEngine, vectorised: bool
) -> None:
    ticker = await _early_close_market(bt_engine)
    ds = await load_dataset(bt_engine, T0, T0 + timedelta(days=1), MarketFilter(tickers=[ticker]))
    assert ds.rows == 150
    s = get_strategy("favourite_longshot")
    params = s.parse_params({"minutes_before_close": 60, "favourite": 0.8, "longshot": 0.2, "size": 5})
    result = simulate(ds, s, params, EngineConfig(vectorised=vectorised))
    assert result.path == ("vectorised" if vectorised else "per_event")
    assert [(e.side, e.size, e.entry_ts) for e in result.executions] == [("yes", D(5), ANNOUNCED)]


async def test_the_view_shows_the_close_time_known_at_each_snapshot(bt_engine: AsyncEngine) -> None:
    ticker = await _early_close_market(bt_engine)
    ds = await load_dataset(bt_engine, T0, T0 + timedelta(days=1), MarketFilter(tickers=[ticker]))
    watcher = CloseWatcher()
    simulate(ds, watcher, StrategyParams())
    shown = {close for ts, close in watcher.seen if ts < ANNOUNCED.timestamp()}
    assert shown == {SCHEDULED.timestamp()}
    assert {close for ts, close in watcher.seen if ts >= ANNOUNCED.timestamp()} == {EARLY.timestamp()}
    # the vectorised path's arrays carry the same column, row by row
    arrays = ds.market(0)
    assert [float(x) for x in arrays.close_time] == [close for _, close in watcher.seen]


async def test_a_market_whose_close_was_never_recorded_shows_none(bt_engine: AsyncEngine) -> None:
    ticker = await _early_close_market(bt_engine)
    async with bt_engine.begin() as c:
        await c.execute(text("DELETE FROM market_close_times WHERE ticker = :t"), {"t": ticker})
    ds = await load_dataset(bt_engine, T0, T0 + timedelta(days=1), MarketFilter(tickers=[ticker]))
    watcher = CloseWatcher()
    simulate(ds, watcher, StrategyParams())
    assert {close for _, close in watcher.seen} == {None}
    s = get_strategy("favourite_longshot")
    params = s.parse_params({"minutes_before_close": 60})
    for vectorised in (False, True):
        assert simulate(ds, s, params, EngineConfig(vectorised=vectorised)).executions == []
