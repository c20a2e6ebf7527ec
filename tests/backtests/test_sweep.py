"""Against PostgreSQL: a sweep's run is the same backtest as a single ``backtest run`` of its request — the same
fill model (displayed size consumed, recorded book walked, unknown sizes capped, latency), stored alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests import MarketFilter, get_executions, get_result, run_backtest, validate_request
from kalshi_analytics.backtests.progress import no_progress
from kalshi_analytics.backtests.sweep import run_sweep
from kalshi_analytics.kalshi.domain import PriceLevel
from kalshi_analytics.recorder.rows import MarketRow, OrderbookRow, SnapshotRow
from kalshi_analytics.recorder.sink import Sink
from tests.backtests.conftest import WIDE

T0 = datetime(2026, 2, 4, 12, tzinfo=UTC)


async def booked_market(engine: AsyncEngine) -> str:
    """Three snapshots showing YES 0.49 × 10 / 0.50 × 5, the third without sizes; a recorded book behind them
    (NO bids 0.48 × 40, 0.49 × 25, 0.50 × 5 → YES asks 0.50 × 5, 0.51 × 25, 0.52 × 40). Settles YES."""
    t = f"KXSWEEP-{uuid.uuid4().hex[:6]}"
    levels = lambda *xs: tuple(PriceLevel(D(p), D(s)) for p, s in xs)  # noqa: E731
    async with Sink(engine, batch_max_seconds=0.05) as sink:
        await sink.put(
            MarketRow(
                ticker=t,
                event_ticker="KXSWEEP-EV",
                series_ticker="KXSWEEP",
                status="finalized",
                result="yes",
                settlement_value=D(1),
                close_time=T0 + timedelta(minutes=5),
                settled_at=T0 + timedelta(minutes=10),
            )
        )
        book = levels(("0.48", "40"), ("0.49", "25"), ("0.50", "5"))
        await sink.put(OrderbookRow(t, T0 - timedelta(seconds=3), T0, "websocket", 1, levels(("0.49", "10")), book))
        for i, sized in enumerate((True, True, False)):
            ts = T0 + timedelta(minutes=i)
            size = D(10) if sized else None
            await sink.put(
                SnapshotRow(
                    t,
                    ts,
                    "poll",
                    ts,
                    yes_bid=D("0.49"),
                    yes_ask=D("0.50"),
                    yes_bid_size=size,
                    yes_ask_size=D(5) if sized else None,
                )
            )
        await sink.flush()
    return t


def comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "timings"}


def trades(ex: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("ticker", "side", "size", "entry_ts", "entry_price", "exit_ts", "exit_price", "exit_reason", "fees", "pnl")
    return sorted(tuple(e[k] for k in keys) for e in ex)


async def test_a_sweep_run_equals_the_same_single_run(bt_engine: AsyncEngine) -> None:
    t = await booked_market(bt_engine)
    f = MarketFilter(tickers=[t])
    reqs = [
        # Larger than the touch: 5 at 0.50, then 15 walked at 0.51 (the sweep once filled the 5 only).
        validate_request("buy_and_hold", {"size": 20}, *WIDE, market_filter=f),
        validate_request("buy_and_hold", {"size": 20}, *WIDE, market_filter=f, vectorised=False),
        # Decided at T0, filled a minute later on the same touch and book.
        validate_request("buy_and_hold", {"size": 20}, *WIDE, market_filter=f, fill_latency_seconds=60),
        # Filled two minutes later where no size was recorded: capped at 7 and flagged.
        validate_request(
            "buy_and_hold",
            {"size": 20},
            *WIDE,
            market_filter=f,
            fill_latency_seconds=120,
            unknown_size_cap=D(7),
            walk_book=False,
        ),
    ]
    swept = await run_sweep(bt_engine, reqs, None, 2, no_progress)
    assert len(swept) == len(reqs)
    sizes = []
    for req, (sweep_id, _) in zip(reqs, swept, strict=True):
        single = await get_result(bt_engine, await run_backtest(bt_engine, req))
        row = await get_result(bt_engine, sweep_id)
        assert row.status == single.status == "done"
        assert (row.total_pnl, row.fees_paid, row.num_trades) == (single.total_pnl, single.fees_paid, single.num_trades)
        assert row.metrics is not None
        assert single.metrics is not None
        assert comparable(row.metrics) == comparable(single.metrics)
        assert row.metrics["fill_model"] == {
            "name": "displayed_liquidity",
            "unknown_size_cap": str(req.unknown_size_cap),
            "latency_seconds": req.fill_latency_seconds,
            "walks_book": req.walk_book,
            "trade_quotes": True,
        }
        assert row.market_filter == single.market_filter  # the request's fill settings, as `config` shows them
        assert row.equity_curve == single.equity_curve
        ex = trades(await get_executions(bt_engine, sweep_id))
        assert ex == trades(await get_executions(bt_engine, single.id))
        sizes.append([(e[2], e[4]) for e in ex])
    walked = [(5, D("0.50")), (15, D("0.51"))]
    assert sizes == [walked, walked, walked, [(7, D("0.50"))]]
