"""A deterministic test strategy that trades often: importable by a runner subprocess through
``STRATEGY_MODULES=tests.live.strategies`` (run from the repository's root)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar

from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams
from kalshi_analytics.strategies.registry import register


class EveryFewParams(StrategyParams):
    every: int = 3
    size: Decimal = Decimal(2)


@register
class EveryFew(Strategy):
    """Buys YES on every ``every``-th snapshot of a market while flat, sells it all two snapshots later: trades
    often, deterministically, on nothing but the view (so a backtest over the same rows makes the same calls)."""

    name: ClassVar[str] = "test_every_few"
    version: ClassVar[str] = "1"
    Params = EveryFewParams

    def on_event(self, view: MarketView, position: Position, params: EveryFewParams) -> Sequence[OrderIntent]:
        n = len(view)
        if position.yes > 0:
            if n % params.every == 2 % params.every:
                return [OrderIntent("yes", "sell", position.yes, reason={"n": n})]
            return []
        ask = view.last("yes_ask")
        if n % params.every == 0 and math.isfinite(ask) and ask < 0.97:
            return [OrderIntent("yes", "buy", params.size, reason={"n": n})]
        return []


class ExplodesParams(StrategyParams):
    at: int = 3


@register
class Explodes(Strategy):
    """Buys on the first snapshot of a market, then raises on the ``at``-th: a user's strategy with a bug."""

    name: ClassVar[str] = "test_explodes"
    version: ClassVar[str] = "1"
    Params = ExplodesParams

    def on_event(self, view: MarketView, position: Position, params: ExplodesParams) -> Sequence[OrderIntent]:
        if len(view) >= params.at:
            raise ZeroDivisionError("the strategy divided by zero")
        return [OrderIntent("yes", "buy", Decimal(1))] if position.flat else []
