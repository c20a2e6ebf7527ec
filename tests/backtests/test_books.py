"""Against PostgreSQL: recorded order books are loaded for the window and walked by the default fill model."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests import MarketFilter, get_executions, get_result, run_backtest, validate_request
from kalshi_analytics.kalshi.domain import PriceLevel
from kalshi_analytics.recorder.rows import MarketRow, OrderbookRow, SnapshotRow
from kalshi_analytics.recorder.sink import Sink
from tests.backtests.conftest import WIDE


async def test_a_buy_larger_than_the_touch_walks_the_recorded_book(bt_engine: AsyncEngine) -> None:
    t = f"KXBOOK-{uuid.uuid4().hex[:6]}"
    t0 = datetime(2026, 2, 3, 12, tzinfo=UTC)
    levels = lambda *xs: tuple(PriceLevel(D(p), D(s)) for p, s in xs)  # noqa: E731
    async with Sink(bt_engine, batch_max_seconds=0.05) as sink:
        await sink.put(
            MarketRow(
                ticker=t,
                event_ticker="KXBOOK-EV",
                series_ticker="KXBOOK",
                status="finalized",
                result="yes",
                settlement_value=D(1),
                close_time=t0 + timedelta(minutes=5),
                settled_at=t0 + timedelta(minutes=10),
            )
        )
        # The book a few seconds before the snapshot: NO bids 0.48 × 40, 0.49 × 25, 0.50 × 5 → YES asks 0.50 × 5
        # (the snapshot's touch), 0.51 × 25, 0.52 × 40.
        await sink.put(
            OrderbookRow(
                t,
                t0 - timedelta(seconds=3),
                t0,
                "websocket",
                1,
                levels(("0.47", "30"), ("0.49", "10")),
                levels(("0.48", "40"), ("0.49", "25"), ("0.50", "5")),
            )
        )
        for i in range(2):
            ts = t0 + timedelta(minutes=i)
            await sink.put(
                SnapshotRow(
                    t, ts, "poll", ts, yes_bid=D("0.49"), yes_ask=D("0.50"), yes_bid_size=D(10), yes_ask_size=D(5)
                )
            )
        await sink.flush()
    f = MarketFilter(tickers=[t])
    # The books in force at the fills, or all the window's (per event) and the one in force at its start: a
    # window starting after the book still walks it on both paths.
    for window, vectorised in itertools.product((WIDE, (t0, WIDE[1])), (True, False)):
        req = validate_request("buy_and_hold", {"size": 20}, *window, market_filter=f, vectorised=vectorised)
        rid = await run_backtest(bt_engine, req)
        ex = await get_executions(bt_engine, rid)
        assert [(e["size"], e["entry_price"], e["fees"]) for e in ex] == [
            (5, D("0.50"), D("0.09")),
            (15, D("0.51"), D("0.27")),
        ]
        assert {e["exit_reason"] for e in ex} == {"settlement"}
        assert all(e["exit_ts"] == t0 + timedelta(minutes=10) for e in ex)  # settled_at, not the close
        res = await get_result(bt_engine, rid)
        assert res.total_pnl == D("2.41") + D("7.08")
    # Not walking the book: the touch's 5 only.
    req = validate_request("buy_and_hold", {"size": 20}, *WIDE, market_filter=f, walk_book=False)
    ex = await get_executions(bt_engine, await run_backtest(bt_engine, req))
    assert [e["size"] for e in ex] == [5]
