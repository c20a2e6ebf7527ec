"""Hand-computed backtests: one trade, known fee, known settlement, exact P&L to the cent."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D
from typing import Any, ClassVar

from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.strategies import get_strategy
from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams
from kalshi_analytics.trading.metrics import compute_metrics
from tests.backtests.conftest import make_dataset


class Scripted(Strategy):
    """Plays a fixed script: {row index: [intents]}."""

    name = "scripted"
    script: ClassVar[dict[int, list[OrderIntent]]] = {}

    def __init__(self, script: dict[int, list[OrderIntent]]) -> None:
        self.script_ = script

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        return self.script_.get(view.index, [])


P = StrategyParams()


def buy(side: str, n: str, limit: str | None = None) -> OrderIntent:
    return OrderIntent(side, "buy", D(n), D(limit) if limit else None)  # type: ignore[arg-type]


def sell(side: str, n: str) -> OrderIntent:
    return OrderIntent(side, "sell", D(n))  # type: ignore[arg-type]


FLAT = [(0.49, 0.50), (0.55, 0.56), (0.59, 0.60), (0.58, 0.60)]


def run(script: dict[int, list[OrderIntent]], result: str | None = "yes", **kw: Any) -> Any:
    ds_kw = {k: kw.pop(k) for k in ("sizes", "close_after_end") if k in kw}
    ds = make_dataset([("M1", result, FLAT)], **ds_kw)
    return simulate(ds, Scripted(script), P, EngineConfig(**kw))


def test_buy_10_yes_at_050_settles_yes_for_482() -> None:
    r = run({0: [buy("yes", "10")]})
    (e,) = r.executions
    assert (e.side, e.size, e.entry_price, e.fees) == ("yes", D(10), D("0.50"), D("0.18"))
    assert (e.exit_reason, e.exit_price) == ("settlement", D(1))
    assert e.pnl == D("4.82")
    assert r.total_pnl == D("4.82")
    assert r.fees_paid == D("0.18")
    assert r.equity[-1] == 10_004.82


def test_buy_no_pays_one_minus_yes_bid_and_settles_no() -> None:
    r = run({0: [buy("no", "10")]}, result="no")
    (e,) = r.executions
    assert e.entry_price == D("0.51")  # NO ask = 1 − YES bid 0.49
    assert e.fees == D("0.18")  # 0.07·10·0.51·0.49 = 0.17493 → 0.18
    assert e.pnl == D("10") * (1 - D("0.51")) - D("0.18") == D("4.72")


def test_losing_settlement() -> None:
    r = run({0: [buy("yes", "10")]}, result="no")
    assert r.executions[0].pnl == D("-5.18")


def test_round_trip_sells_at_the_bid_with_two_fees() -> None:
    r = run({0: [buy("yes", "10")], 2: [sell("yes", "10")]})
    (e,) = r.executions
    assert (e.exit_reason, e.exit_price) == ("signal", D("0.59"))
    # entry fee 0.18; exit 0.07·10·0.59·0.41 = 0.16933 → 0.17
    assert e.fees == D("0.35")
    assert e.pnl == D("0.90") - D("0.35") == D("0.55")
    assert r.fills == 2


def test_partial_sell_splits_the_lot_and_its_fees_exactly() -> None:
    r = run({0: [buy("yes", "10")], 2: [sell("yes", "4")]})
    closed, settled = r.executions
    assert (closed.size, closed.exit_reason, settled.size, settled.exit_reason) == (
        D(4),
        "signal",
        D(6),
        "settlement",
    )
    # exit fee 0.07·4·0.59·0.41 = 0.0677 → 0.07; entry fee 0.18 split 4/10 and 6/10
    assert closed.fees == D("0.072") + D("0.07")
    assert settled.fees == D("0.108")
    assert closed.fees + settled.fees == r.fees_paid == D("0.25")
    assert closed.pnl + settled.pnl == r.total_pnl == D("4") * D("0.09") + D(6) * D("0.5") - D("0.25")


def test_sell_without_position_does_nothing() -> None:
    r = run({1: [sell("yes", "5")]})
    assert r.executions == []
    assert r.skipped == {"nothing_to_sell": 1}


def test_displayed_size_caps_the_fill() -> None:
    r = run({0: [buy("yes", "10"), buy("no", "10")]}, sizes=[(2, 3)] * 4)
    yes, no = r.executions
    assert (yes.side, yes.size) == ("yes", D(3))  # YES ask size
    assert (no.side, no.size) == ("no", D(2))  # NO asks are the YES bids


def test_limit_that_does_not_cross_is_dropped() -> None:
    r = run({0: [buy("yes", "10", limit="0.49")], 1: [buy("yes", "10", limit="0.56")]})
    (e,) = r.executions
    assert e.entry_price == D("0.56")
    assert r.skipped == {"limit_not_crossed": 1}


def test_capital_and_position_limits() -> None:
    r = run({0: [buy("yes", "10")]}, initial_capital=D(2))
    assert r.executions[0].size == D(3)  # 3·0.50 + 0.06 ≤ $2 < 4·0.50 + fee
    r = run({0: [buy("yes", "10")], 1: [buy("yes", "10")]}, max_position=D(12))
    assert [e.size for e in r.executions] == [D(10), D(2)]


def test_fractional_sizes() -> None:
    r = run({0: [buy("yes", "2.5")]}, contract_step=D("0.01"))
    (e,) = r.executions
    assert (e.size, e.fees, e.pnl) == (D("2.5"), D("0.05"), D("1.20"))


def test_unresolved_market_is_marked_at_the_last_bid_and_flagged() -> None:
    r = run({0: [buy("yes", "10")]}, result=None)
    (e,) = r.executions
    assert (e.exit_reason, e.exit_price) == ("marked", D("0.58"))
    assert e.pnl == D("0.80") - D("0.18")
    assert r.unresolved_markets == ["M1"]
    assert compute_metrics(r)["unresolved_markets"] == ["M1"]


def test_result_known_but_settling_after_the_window_is_marked_not_settled() -> None:
    r = run({0: [buy("yes", "10")]}, close_after_end=True)
    assert r.executions[0].exit_reason == "marked"


def test_empty_dataset_is_a_result_with_no_trades() -> None:
    ds = make_dataset([])
    r = simulate(ds, get_strategy("fade_overreaction"), get_strategy("fade_overreaction").parse_params({}))
    assert (r.snapshots, r.executions, r.total_pnl) == (0, [], D(0))
    m = compute_metrics(r)
    assert m["num_trades"] == 0
    assert m["sharpe"] is None


def test_metrics_of_a_known_run() -> None:
    ds = make_dataset([("W", "yes", FLAT), ("L", "no", FLAT)])
    s = get_strategy("buy_and_hold")
    r = simulate(ds, s, s.parse_params({"size": 10}))
    m = compute_metrics(r)
    assert D(m["total_pnl"]) == D("4.82") - D("5.18")
    assert m["num_trades"] == 2
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == float(D("4.82") / D("5.18"))
    assert m["fees_paid"] == "0.36"
    assert m["brier_score"] == 0.25  # (0.5 − 1)² and (0.5 − 0)²
    assert m["calibration"] == [
        {"bucket": "0.5-0.6", "trades": 2, "contracts": 20.0, "mean_price": 0.5, "win_rate": 0.5}
    ]
