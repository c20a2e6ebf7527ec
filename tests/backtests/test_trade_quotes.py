"""Snapshots with a trade price and no recorded quote (the NBA candle import): priced at the trade, flagged."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np

from kalshi_analytics.backtests.data import SOURCES, Dataset
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.strategies import get_strategy
from kalshi_analytics.trading.fills import DisplayedLiquidity
from kalshi_analytics.trading.metrics import compute_metrics
from tests.backtests.conftest import make_dataset
from tests.backtests.test_engine import P, Scripted, buy, sell

QUOTES = ("yes_bid", "yes_ask", "no_bid", "no_ask")


def trades_only(trades: list[float], result: str | None = "yes") -> Dataset:
    """One market whose snapshots hold only a last trade price, as candles carry it."""
    ds = make_dataset([("M", result, [(0.0, 0.0)] * len(trades))])
    for c in QUOTES:
        ds.columns[c][:] = np.nan
    ds.columns["last_price"][:] = trades
    ds.source[:] = SOURCES.index("backfill")
    return ds


def test_a_snapshot_without_a_quote_fills_at_its_trade_price_capped_and_flagged() -> None:
    ds = trades_only([0.32, 0.35, 0.40])
    r = simulate(ds, Scripted({0: [buy("yes", "250")], 1: [buy("no", "10")], 2: [sell("yes", "40")]}), P)
    yes = [e for e in r.executions if e.side == "yes"]
    (no,) = [e for e in r.executions if e.side == "no"]
    # YES at the trade 0.32, size unknown → the default cap of 100 contracts; fee ceil(0.07·100·0.32·0.68) = 1.53;
    # 40 of them sold at the trade 0.40 for ceil(0.07·40·0.40·0.60 = 0.672) = 0.68: the lots carry 2.21 of fees.
    assert {e.entry_price for e in yes} == {D("0.32")}
    assert (sum(e.size for e in yes), sum(e.fees for e in yes)) == (D(100), D("1.53") + D("0.68"))
    # NO at 1 − the trade (0.65): ceil(0.07·10·0.65·0.35) = ceil(0.15925) = 0.16.
    assert (no.size, no.entry_price, no.fees) == (D(10), D("0.65"), D("0.16"))
    sold = next(e for e in r.executions if e.exit_reason == "signal")
    assert (sold.size, sold.exit_price) == (D(40), D("0.40"))  # sold at the trade too
    assert r.trade_priced_fills == 3
    m = compute_metrics(r)
    assert m["trade_priced_fills"] == 3
    assert m["size_unknown_fills"] == 3
    assert m["flags"][:2] == ["size_unknown", "price_from_trades"]
    assert m["fill_model"]["trade_quotes"] is True


def test_the_strategy_sees_the_trade_as_its_quote_and_buy_and_hold_pays_it() -> None:
    s = get_strategy("buy_and_hold")
    r = simulate(trades_only([0.63, 0.70, 0.01], result="no"), s, s.parse_params({"size": 10}))
    (e,) = r.executions
    # 10 × 0.63 + fee ceil(0.07·10·0.63·0.37 = 0.16317) = 0.17; resolves NO: −6.30 − 0.17.
    assert (e.entry_price, e.fees, e.pnl) == (D("0.63"), D("0.17"), D("-6.47"))


def test_without_trade_quotes_such_snapshots_have_no_quote() -> None:
    cfg = EngineConfig(fill_model=DisplayedLiquidity(trade_quotes=False))
    r = simulate(trades_only([0.32, 0.35]), Scripted({0: [buy("yes", "5")]}), P, cfg)
    assert r.executions == []
    assert r.skipped == {"no_quote": 1}
    assert r.trade_priced_fills == 0


def test_recorded_quotes_are_left_alone_and_fills_on_them_are_not_flagged() -> None:
    ds = make_dataset([("M", "yes", [(0.49, 0.50), (0.55, 0.56)])], sizes=[(500, 500)] * 2)
    ds.columns["last_price"][:] = [0.10, 0.90]  # a stale trade elsewhere does not move the quote
    r = simulate(ds, Scripted({0: [buy("yes", "10")]}), P)
    assert r.executions[0].entry_price == D("0.50")
    assert r.trade_priced_fills == 0
    assert compute_metrics(r)["flags"] == ["settlement_time_assumed"]
