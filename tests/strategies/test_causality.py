"""No look-ahead: the per-event view ends at the current snapshot, and the vectorised built-ins are causal."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kalshi_analytics.backtests.data import Dataset
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.strategies import check_causal, get_strategy, list_strategies
from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams
from tests.backtests.conftest import make_dataset

BUILTINS = ["fade_overreaction", "momentum", "mean_reversion", "favourite_longshot", "buy_and_hold"]
PARAMS: dict[str, dict[str, Any]] = {
    "fade_overreaction": {"lookback": 5, "threshold": 0.04, "hold": 7},
    "momentum": {"lookback": 5, "threshold": 0.04, "hold": 0},
    "mean_reversion": {"window": 12, "band": 0.03},
    "favourite_longshot": {"minutes_before_close": 100, "favourite": 0.6, "longshot": 0.4},
    "buy_and_hold": {"side": "no", "size": 3},
}


def random_quotes(seed: int, n: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    mid = np.clip(0.5 + np.cumsum(rng.normal(0, 0.02, n)), 0.03, 0.97)
    bid = np.round(mid - 0.01, 2)
    ask = np.round(bid + rng.integers(1, 4, n) / 100, 2)
    out = list(zip(bid.tolist(), ask.tolist(), strict=True))
    out[3] = (float("nan"), float("nan"))  # an empty book now and then
    return out


def random_dataset(markets: int = 4, n: int = 300) -> Dataset:
    return make_dataset([(f"R{i}", "yes" if i % 2 else "no", random_quotes(i, n)) for i in range(markets)])


class Peeker(Strategy):
    """Tries to look ahead every way it can, and records what it saw."""

    name = "peeker"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, float, bool]] = []

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        buf = view._buf  # the whole buffer behind the view, reached on purpose
        future_empty = bool(np.isnan(buf[len(view) :]).all())
        self.seen.append((view.index, len(view), float(view.ts[-1]), future_empty))
        with pytest.raises(ValueError, match="read-only"):
            view.yes_ask[0] = 0.0
        return []


def test_the_view_ends_at_the_current_snapshot_and_the_future_does_not_exist() -> None:
    ds = random_dataset(3, 50)
    peeker = Peeker()
    simulate(ds, peeker, StrategyParams())
    assert len(peeker.seen) == ds.rows
    per_market: dict[float, int] = {}
    for index, length, _ts, future_empty in peeker.seen:
        assert length == index + 1
        assert future_empty
        per_market[index] = per_market.get(index, 0) + 1
    assert all(c == 3 for c in per_market.values())  # every index of every market, once
    assert sorted(t for *_, t, _ in peeker.seen) == [t for *_, t, _ in peeker.seen]  # time order


@pytest.mark.parametrize("name", BUILTINS)
def test_mutating_the_future_does_not_change_past_decisions(name: str) -> None:
    cut = 150
    ds = random_dataset(2, 300)
    s = get_strategy(name)
    params = s.parse_params(PARAMS[name])
    for vectorised in (False, True):
        base = simulate(ds, s, params, EngineConfig(vectorised=vectorised))
        changed = random_dataset(2, 300)
        for k in range(2):
            a, b = int(ds.offsets[k]) + cut, int(ds.offsets[k + 1])
            for col in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price"):
                changed.columns[col][a:b] = ds.columns[col][a:b][::-1]
        other = simulate(changed, s, params, EngineConfig(vectorised=vectorised))
        t_cut = float(ds.columns["ts"][cut])

        def before(r: Any, t_cut: float = t_cut) -> list[tuple[Any, ...]]:
            # executions are listed when they close, so compare entries as a set (sorted)
            entries = [(e.ticker, e.side, e.size, e.entry_ts, e.entry_price) for e in r.executions]
            return sorted(x for x in entries if x[3].timestamp() < t_cut)

        assert before(base) == before(other)


@pytest.mark.parametrize("name", BUILTINS)
def test_vectorised_signals_are_causal(name: str) -> None:
    ds = random_dataset(2, 200)
    s = get_strategy(name)
    for k in range(2):
        check_causal(s, ds.market(k), s.parse_params(PARAMS[name]), cuts=[1, 7, 50, 120, 199])


@pytest.mark.parametrize("name", BUILTINS)
def test_per_event_and_vectorised_paths_make_the_same_trades(name: str) -> None:
    ds = random_dataset(4, 400)
    s = get_strategy(name)
    params = s.parse_params(PARAMS[name])
    a = simulate(ds, s, params, EngineConfig(vectorised=False))
    b = simulate(ds, s, params, EngineConfig(vectorised=True))
    assert (a.path, b.path) == ("per_event", "vectorised")

    def key(r: Any) -> list[tuple[Any, ...]]:
        return [
            (e.ticker, e.side, e.size, e.entry_ts, e.entry_price, e.exit_ts, e.exit_price, e.exit_reason, e.fees, e.pnl)
            for e in r.executions
        ]

    assert key(a) == key(b)
    assert a.total_pnl == b.total_pnl
    if name != "favourite_longshot":
        assert a.executions, "the test data should make every strategy trade"


def test_a_strategy_that_trades_the_cheating_way_is_impossible_to_write() -> None:
    """Even reaching for the buffer, the next snapshot's price is not there yet."""

    class Cheater(Strategy):
        name = "cheater"

        def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
            nxt = view._buf[len(view) : len(view) + 1, 2]  # yes_ask of the next row, if it existed
            if len(nxt) and np.isfinite(nxt[0]) and nxt[0] > view.yes_ask[-1]:
                return [OrderIntent("yes", "buy", D(1))]
            return []

    assert simulate(random_dataset(2, 200), Cheater(), StrategyParams()).executions == []


def test_registry_lists_schemas_and_rejects_unknown_names_and_params() -> None:
    names = {s["name"] for s in list_strategies()}
    assert set(BUILTINS) <= names
    fade = next(s for s in list_strategies() if s["name"] == "fade_overreaction")
    assert fade["vectorised"] is True
    assert fade["params_schema"]["properties"]["threshold"]["exclusiveMaximum"] == 1
    with pytest.raises(LookupError, match="unknown strategy 'nope'"):
        get_strategy("nope")
    with pytest.raises(LookupError):
        get_strategy("fade_overreaction", "99")
    with pytest.raises(ValueError, match="Extra inputs"):
        get_strategy("momentum").parse_params({"bogus": 1})
