"""Exact accounting through the engine, hand-computed: the curve's start, intraday drawdowns, settlement cash
available from the time the result was known, fills that consume liquidity and walk the book, latency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kalshi_analytics.backtests.books import BookTape
from kalshi_analytics.backtests.engine import EngineConfig, book_points, plan, simulate
from kalshi_analytics.strategies import get_strategy
from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams
from kalshi_analytics.trading.fills import DisplayedLiquidity
from kalshi_analytics.trading.metrics import compute_metrics
from tests.backtests.conftest import T0, make_dataset
from tests.backtests.test_engine import Scripted, buy, sell

P = StrategyParams()
DAY = timedelta(days=1)
ONE_DAY = (T0.replace(hour=0), T0.replace(hour=0) + DAY)
HALF = [(0.49, 0.50), (0.48, 0.50), (0.45, 0.47), (0.40, 0.42)]


def us(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000


@pytest.mark.parametrize("days", [1, 4])
def test_buy_100_yes_at_050_resolving_no_draws_down_5175_from_the_initial_capital(days: int) -> None:
    """The issue's case: the curve starts at (window start, capital), so the whole loss is a drawdown."""
    window = (ONE_DAY[0], ONE_DAY[0] + days * DAY)
    ds = make_dataset([("M", "no", HALF)], sizes=[(500, 500)] * 4, window=window)
    r = simulate(ds, Scripted({0: [buy("yes", "100")]}), P)
    assert (r.equity_ts[0], r.equity[0]) == (window[0].timestamp(), 10_000.0)
    assert r.total_pnl == D("-51.75")  # 100 × 0.50 + fee 1.75, all lost
    m = compute_metrics(r)
    assert m["max_drawdown"] == 51.75
    assert m["max_drawdown_pct"] == pytest.approx(0.5175)
    assert m["sharpe"] is not None
    assert m["sharpe"] < 0
    assert m["max_drawdown_peak_ts"] == window[0].isoformat()
    # Settled at its close, one minute after the last snapshot (the curve ends there: nothing later is known).
    close = T0 + timedelta(minutes=4)
    assert m["max_drawdown_trough_ts"] == close.isoformat()
    assert r.equity_ts[-1] == close.timestamp()


def test_equity_is_sampled_every_interval_and_at_every_fill_so_an_intraday_dip_shows() -> None:
    # Marked at the bid: bought at 0.50, the bid falls to 0.40 three minutes later and recovers to 0.60.
    quotes = [(0.49, 0.50), (0.45, 0.47), (0.40, 0.42), (0.60, 0.62)]
    ds = make_dataset([("M", "yes", quotes)], sizes=[(500, 500)] * 4, step_seconds=90)
    r = simulate(ds, Scripted({0: [buy("yes", "10")]}), P, EngineConfig(equity_interval_seconds=60))
    points = dict(zip(r.equity_ts.tolist(), r.equity.tolist(), strict=True))
    t0 = T0.timestamp()
    assert points[t0] == pytest.approx(10_000 - 5.18 + 4.9)  # the fill: cash − cost − fee + 10 × bid
    assert points[t0 + 60] == pytest.approx(10_000 - 5.18 + 4.9)  # the grid: nothing new yet
    assert points[t0 + 180] == pytest.approx(10_000 - 5.18 + 4.0)  # the dip at 0.40
    assert points[t0 + 360] == pytest.approx(10_004.82)  # settled YES at the close (4 × 90 s)
    assert compute_metrics(r)["max_drawdown"] == pytest.approx(5.18 - 4.0)


def test_a_settlement_funds_a_market_listed_two_days_later() -> None:
    """Market A pays $10 on day 1; with $10 of capital the 20 contracts of market B on day 3 are affordable only
    with that cash (before: it arrived at the end of the run, and B was cut to 9 contracts for "capital")."""
    ds = make_dataset(
        [("A", "yes", HALF[:2]), ("B", "no", HALF[:2])],
        sizes=[(500, 500)] * 2,
        starts=[T0, T0 + 2 * DAY],
    )
    by = _ScriptPerMarket({"A": {0: [buy("yes", "10")]}, "B": {0: [buy("yes", "20")]}})
    r = simulate(ds, by, P, EngineConfig(initial_capital=D(10)))
    a, b = sorted(r.executions, key=lambda e: e.ticker)
    assert (a.size, a.exit_reason, a.exit_ts, a.pnl) == (D(10), "settlement", T0 + timedelta(minutes=2), D("4.82"))
    # Cash on day 3: 10 − 5.18 + 10 = 14.82, so B's 20 × 0.50 + fee 0.35 = 10.35 fits.
    assert (b.size, b.entry_ts) == (D(20), T0 + 2 * DAY)
    assert r.final_cash == D(10) + D("4.82") - D("10.35")
    # B listed while A is still open: only the 4.82 left buys B — 9 contracts (4.50 + fee 0.16).
    early = make_dataset([("A", "yes", HALF[:2]), ("B", "no", HALF[:2])], sizes=[(500, 500)] * 2, starts=[T0, T0])
    b_early = next(e for e in simulate(early, by, P, EngineConfig(initial_capital=D(10))).executions if e.ticker == "B")
    assert b_early.size == D(9)
    assert "capital" not in r.skipped


def test_settlement_time_is_the_recorded_settled_at_and_later_intents_are_refused() -> None:
    ds = make_dataset([("M", "yes", HALF * 2)], sizes=[(500, 500)] * 8)
    settled = T0 + timedelta(minutes=3, seconds=30)
    ds.markets[0] = replace(ds.markets[0], settled_at=settled)
    r = simulate(ds, Scripted({0: [buy("yes", "10")], 5: [buy("yes", "10")]}), P)
    (e,) = r.executions
    assert (e.exit_reason, e.exit_ts, e.exit_price) == ("settlement", settled, D(1))
    assert r.skipped == {"settled": 1}
    assert compute_metrics(r)["flags"] == []  # the settlement time was recorded, not assumed


class _ScriptPerMarket(Strategy):
    name = "scripted_per_market"

    def __init__(self, scripts: dict[str, dict[int, list[OrderIntent]]]) -> None:
        self.scripts = scripts

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        return self.scripts.get(view.ticker, {}).get(view.index, [])


# ------------------------------------------------------------------------------------------------------ fills
def test_displayed_size_is_consumed_and_not_taken_twice_until_the_quote_changes() -> None:
    quotes = [(0.49, 0.50)] * 3 + [(0.50, 0.51)]
    sizes = [(20, 8), (20, 8), (20, 12), (20, 8)]
    ds = make_dataset([("M", "yes", quotes)], sizes=sizes)
    script = {0: [buy("yes", "5"), buy("yes", "5")], 1: [buy("yes", "5")], 2: [buy("yes", "5")], 3: [buy("yes", "5")]}
    r = simulate(ds, Scripted(script), P)
    got = [(e.entry_ts, e.size) for e in sorted(r.executions, key=lambda e: e.entry_ts)]
    minute = timedelta(minutes=1)
    assert got == [
        (T0, D(5)),  # 8 shown
        (T0, D(3)),  # the same snapshot: 3 left
        # row 1 shows the same 8 at 0.50: those are the contracts already taken → nothing (skipped)
        (T0 + 2 * minute, D(4)),  # 12 shown at the same price: 4 beyond the 8 taken
        (T0 + 3 * minute, D(5)),  # the touch moved to 0.51: new liquidity
    ]
    assert r.skipped == {"no_liquidity": 1}


def test_selling_yes_and_buying_no_draw_on_the_same_yes_bids() -> None:
    ds = make_dataset([("M", "yes", [(0.49, 0.50), (0.55, 0.56)])], sizes=[(100, 100), (6, 100)])
    r = simulate(ds, Scripted({0: [buy("yes", "10")], 1: [sell("yes", "4"), buy("no", "4")]}), P)
    no = next(e for e in r.executions if e.side == "no")
    assert (no.size, no.entry_price) == (D(2), D("0.45"))  # 6 YES bids at 0.55: 4 sold into, 2 left (NO at 0.45)


def test_a_large_buy_walks_two_recorded_book_levels() -> None:
    ds = make_dataset([("M", "yes", [(0.49, 0.50), (0.49, 0.50)])], sizes=[(10, 5), (10, 5)])
    # Kalshi's book is bids only: YES asks are 1 − NO bids. NO bids 0.48 × 40, 0.49 × 25, 0.50 × 5 → YES asks
    # 0.50 × 5 (the touch the snapshot shows), 0.51 × 25, 0.52 × 40.
    book = (us(T0), [(0.47, 30.0), (0.48, 20.0), (0.49, 10.0)], [(0.48, 40.0), (0.49, 25.0), (0.50, 5.0)])
    ds.books = BookTape.from_books([[book]])
    r = simulate(ds, Scripted({0: [buy("yes", "20")]}), P)
    first, second = r.executions
    assert (first.size, first.entry_price, first.fees) == (D(5), D("0.50"), D("0.09"))  # 0.0875
    assert (second.size, second.entry_price, second.fees) == (D(15), D("0.51"), D("0.27"))  # 0.262395
    assert r.fills == 2
    assert r.final_cash == D(10_000) - D("2.50") - D("7.65") - D("0.36") + D(20)
    assert (first.pnl, second.pnl) == (D("2.41"), D("7.08"))
    # A limit at the touch stops the walk; a stale book (its best is not the quote's touch) is not walked.
    r = simulate(ds, Scripted({0: [buy("yes", "20", limit="0.50")]}), P)
    assert [e.size for e in r.executions] == [D(5)]
    stale = (us(T0), [], [(0.48, 40.0), (0.51, 25.0)])  # its best YES ask would be 0.49
    ds.books = BookTape.from_books([[stale]])
    assert [e.size for e in simulate(ds, Scripted({0: [buy("yes", "20")]}), P).executions] == [D(5)]


def test_without_recorded_sizes_fills_are_capped_at_the_stated_default_and_flagged() -> None:
    ds = make_dataset([("M", "yes", HALF)])  # no sizes recorded
    r = simulate(ds, Scripted({0: [buy("yes", "250")]}), P)
    (e,) = r.executions
    assert e.size == D(100)
    m = compute_metrics(r)
    assert m["flags"] == ["size_unknown", "settlement_time_assumed"]  # no settled_at: taken as known at the close
    assert m["settlement_time_assumed"] == ["M"]
    assert m["size_unknown_fills"] == 1
    assert m["fill_model"] == {
        "name": "displayed_liquidity",
        "unknown_size_cap": "100",
        "latency_seconds": 0.0,
        "walks_book": True,
        "trade_quotes": True,
    }
    cfg = EngineConfig(fill_model=DisplayedLiquidity(unknown_size_cap=D(40)))
    assert simulate(ds, Scripted({0: [buy("yes", "250")]}), P, cfg).executions[0].size == D(40)


@pytest.mark.parametrize("vectorised", [True, False])
def test_latency_fills_on_the_first_snapshot_at_or_after_decision_plus_latency(vectorised: bool) -> None:
    quotes = [(0.40, 0.42), (0.45, 0.47), (0.49, 0.50), (0.55, 0.56)]
    ds = make_dataset([("M", "yes", quotes)], sizes=[(500, 500)] * 4)
    s = get_strategy("buy_and_hold")
    cfg = EngineConfig(fill_model=DisplayedLiquidity(latency_seconds=90), vectorised=vectorised)
    r = simulate(ds, s, s.parse_params({"size": 10}), cfg)
    (e,) = r.executions
    assert (e.entry_ts, e.entry_price) == (T0 + timedelta(minutes=2), D("0.50"))  # decided at 0, due at 90 s
    late = EngineConfig(fill_model=DisplayedLiquidity(latency_seconds=600), vectorised=vectorised)
    r = simulate(ds, s, s.parse_params({"size": 10}), late)
    assert r.executions == []
    assert r.skipped == {"no_snapshot_after_latency": 1}


# ------------------------------------------------------------------------------------------------- metrics
class _Noisy(Strategy):
    name = "noisy"

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        if view.index == 1:
            return [OrderIntent("yes", "buy", D(1), reason={"move": 0.48 - 0.5, "avg": position.yes_avg_price})]
        return []


def test_signals_are_stored_rounded_to_the_datas_precision() -> None:
    assert 0.48 - 0.5 == -0.020000000000000018
    ds = make_dataset([("M", "yes", HALF)], sizes=[(500, 500)] * 4)
    (e,) = simulate(ds, _Noisy(), P).executions
    assert e.signal == {"move": -0.02, "avg": None}


class _AverageWatcher(Strategy):
    name = "average_watcher"

    def __init__(self) -> None:
        self.seen: list[Position] = []

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        self.seen.append(position)
        return [OrderIntent("yes", "buy", D(10))] if view.index < 2 else []


def test_the_strategy_sees_its_average_price() -> None:
    ds = make_dataset([("M", "yes", [(0.49, 0.50), (0.55, 0.60), (0.55, 0.60)])], sizes=[(500, 500)] * 3)
    w = _AverageWatcher()
    simulate(ds, w, P)
    assert w.seen[1] == Position(D(10), D(0), D("0.5"), None)
    assert w.seen[2].yes == D(20)
    assert w.seen[2].yes_avg_price == D("0.55")  # (10 × 0.50 + 10 × 0.60) / 20


def test_exposure_is_time_with_any_position_open_not_summed_lot_durations() -> None:
    # Two lots held together for the same 2 minutes (a partial sell splits one): 2 minutes of exposure.
    ds = make_dataset([("M", "yes", HALF + HALF)], sizes=[(500, 500)] * 8, step_seconds=60)
    script = {0: [buy("yes", "10"), buy("yes", "10")], 1: [sell("yes", "5")], 2: [sell("yes", "15")]}
    r = simulate(ds, Scripted(script), P)
    m = compute_metrics(r)
    assert len(r.executions) == 3
    assert m["exposure_seconds"] == 120.0
    assert m["exposure_time"] == pytest.approx(120 / (8 * 60))  # span: the first grid point to the close


def test_realised_and_unrealised_pnl_add_up_to_the_total() -> None:
    ds = make_dataset([("W", "yes", HALF), ("U", None, HALF)], sizes=[(500, 500)] * 4)
    s = get_strategy("buy_and_hold")
    r = simulate(ds, s, s.parse_params({"size": 10}))
    assert r.realised_pnl == D("4.82")
    assert r.unrealised_pnl == D(10) * D("0.40") - D("5.18")  # marked at the last bid 0.40
    assert r.total_pnl == r.realised_pnl + r.unrealised_pnl
    m = compute_metrics(r)
    assert (m["realised_pnl"], m["unrealised_pnl"]) == ("4.8200", "-1.1800")
    assert m["flags"] == ["unresolved_marked", "settlement_time_assumed"]
    assert m["num_realised_trades"] == 1
    assert m["win_rate"] == 1.0  # the marked lot is not a closed trade
    assert np.isclose(r.equity[-1], 10_000 + 4.82 - 1.18)
    assert r.curve.ts_us[0] == int(datetime(2020, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000


def test_books_are_needed_only_where_an_order_is_larger_than_the_touch() -> None:
    ds = make_dataset([("A", "yes", HALF), ("B", "yes", HALF)], sizes=[(10, 5), (10, 50), (10, 5), (10, float("nan"))])
    s = get_strategy("buy_and_hold")
    for size, expected in ((4, {}), (20, {0: [0], 1: [0]})):
        intents = plan(ds, s, s.parse_params({"size": size}))
        points = book_points(ds, intents)
        assert {k: ((v - us(T0)) // 60_000_000).tolist() for k, v in points.items()} == expected
    no_side = plan(ds, s, s.parse_params({"size": 4, "side": "no"}))  # NO asks are the YES bids (10 shown)
    assert book_points(ds, no_side) == {}
    # Where no size was recorded, depth is worth a look too (here the 4th row, after a latency of 3 minutes).
    late = plan(ds, s, s.parse_params({"size": 4}), EngineConfig(fill_model=DisplayedLiquidity(latency_seconds=180)))
    assert {k: ((v - us(T0)) // 60_000_000).tolist() for k, v in book_points(ds, late).items()} == {0: [3], 1: [3]}
