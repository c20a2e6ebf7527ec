"""Strategies: the interface (:mod:`.base`), the registry and the built-ins."""

from kalshi_analytics.strategies.base import (
    FIELDS,
    MarketArrays,
    MarketView,
    OrderIntent,
    Position,
    SignalArrays,
    Strategy,
    StrategyParams,
    causal_violation,
    check_causal,
)
from kalshi_analytics.strategies.registry import UnknownStrategyError, get_strategy, list_strategies, register

__all__ = [
    "FIELDS",
    "MarketArrays",
    "MarketView",
    "OrderIntent",
    "Position",
    "SignalArrays",
    "Strategy",
    "StrategyParams",
    "UnknownStrategyError",
    "causal_violation",
    "check_causal",
    "get_strategy",
    "list_strategies",
    "register",
]
