"""A strategy's vectorised ``signals`` are used only once they are checked causal on the run's own data."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kalshi_analytics.backtests.causality import SPOT_MARKETS, NotCausalError
from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.strategies import get_strategy
from kalshi_analytics.strategies.base import (
    MarketArrays,
    MarketView,
    OrderIntent,
    Position,
    SignalArrays,
    Strategy,
    StrategyParams,
)
from tests.backtests.conftest import make_dataset
from tests.strategies.test_causality import random_dataset


def _trades(r: Any) -> list[tuple[Any, ...]]:
    return [(e.ticker, e.side, e.size, e.entry_ts, e.entry_price) for e in r.executions]


class Peeker(Strategy):
    """Buys YES when the next snapshot's mid is higher (it reads the next row); ``on_event`` cannot, so it buys
    when the mid just rose."""

    name = "peeker"

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        mid = view.tail_mid(2)
        if len(mid) == 2 and mid[1] > mid[0]:
            return [OrderIntent("yes", "buy", D(1))]
        return []

    def signals(self, arrays: MarketArrays, params: Any) -> list[SignalArrays]:
        mid = arrays.mid
        rises_next = np.zeros(len(mid), bool)
        rises_next[:-1] = mid[1:] > mid[:-1]
        return [SignalArrays.where(rises_next, "yes", "buy", 1.0)]


class HonestTwin(Peeker):
    """The same rule written causally in both forms, without declaring it."""

    name = "honest_twin"

    def signals(self, arrays: MarketArrays, params: Any) -> list[SignalArrays]:
        mid = arrays.mid
        rose = np.zeros(len(mid), bool)
        rose[1:] = mid[1:] > mid[:-1]
        return [SignalArrays.where(rose, "yes", "buy", 1.0)]


def test_a_peeking_signals_is_caught_and_the_run_takes_the_per_event_path() -> None:
    ds = random_dataset(3, 200)
    result = simulate(ds, Peeker(), StrategyParams())
    assert result.path == "per_event"
    check = result.run_info()["causal_check"]
    assert check["verdict"] == "not_causal"
    assert "uses later data" in check["problem"]
    assert _trades(result) == _trades(simulate(ds, Peeker(), StrategyParams(), EngineConfig(vectorised=False)))
    assert result.executions, "the data should make the rule trade"


def test_a_peeker_without_on_event_is_refused_with_a_message() -> None:
    class SignalsOnly(Peeker):
        name = "signals_only"
        on_event = Strategy.on_event  # type: ignore[assignment]

    with pytest.raises(NotCausalError, match=r"signals_only.*use later data.*no on_event"):
        simulate(random_dataset(2, 100), SignalsOnly(), StrategyParams())


def test_a_signal_suppressed_by_later_data_is_caught() -> None:
    """No intent of the full run to cut after: the seeded random cuts find the rows a later fall removed."""

    class SuppressedByTheEnd(HonestTwin):
        name = "suppressed"

        def signals(self, arrays: MarketArrays, params: Any) -> list[SignalArrays]:
            mid = arrays.mid
            high = mid >= 0.5
            ends_low = bool(mid[-1] < 0.5)  # the market's last mid: not known before the end
            return [SignalArrays.where(high & ~ends_low, "yes", "buy", 1.0)]

    quotes = [(0.6, 0.62)] * 150 + [(0.3, 0.32)] * 50  # high for a while, then it falls for good
    ds = make_dataset([("FALLS", "no", quotes)])
    result = simulate(ds, SuppressedByTheEnd(), StrategyParams())
    assert result.run_info()["causal_check"]["verdict"] == "not_causal"
    assert result.path == "per_event"


def test_a_limit_from_later_data_is_caught() -> None:
    class FutureLimit(HonestTwin):
        name = "future_limit"

        def signals(self, arrays: MarketArrays, params: Any) -> list[SignalArrays]:
            (sig,) = super().signals(arrays, params)
            return [SignalArrays(sig.side, sig.action, sig.size, limit=np.full(len(arrays), arrays["yes_ask"].max()))]

    result = simulate(random_dataset(2, 200), FutureLimit(), StrategyParams())
    check = result.run_info()["causal_check"]
    assert check["verdict"] == "not_causal"
    assert "limit" in check["problem"]


def test_an_undeclared_causal_strategy_is_checked_on_every_market_then_vectorised() -> None:
    ds = random_dataset(5, 200)
    result = simulate(ds, HonestTwin(), StrategyParams())
    assert result.path == "vectorised"
    check = result.run_info()["causal_check"]
    assert (check["verdict"], check["markets"]) == ("checked", 5)
    assert check["cuts"] > 5
    assert _trades(result) == _trades(simulate(ds, HonestTwin(), StrategyParams(), EngineConfig(vectorised=False)))


def test_a_declared_built_in_is_spot_checked_on_a_few_markets() -> None:
    ds = random_dataset(SPOT_MARKETS + 3, 150)
    s = get_strategy("momentum")
    result = simulate(ds, s, s.parse_params({"lookback": 5, "threshold": 0.04}))
    check = result.run_info()["causal_check"]
    assert result.path == "vectorised"
    assert (check["verdict"], check["markets"]) == ("spot_checked", SPOT_MARKETS)


def test_a_declared_strategy_that_lies_is_still_caught_on_the_markets_it_checks() -> None:
    class Liar(Peeker):
        name = "liar"
        causal_signals = True

    result = simulate(random_dataset(2, 200), Liar(), StrategyParams())  # two markets: both spot-checked
    assert result.run_info()["causal_check"]["verdict"] == "not_causal"
    assert result.path == "per_event"
