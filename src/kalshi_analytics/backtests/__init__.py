"""Backtests: columnar loading, the engine that feeds the trading core, persistence and the service API.

Bad input raises :class:`kalshi_analytics.errors.InvalidInputError` (an unknown strategy its subclass
:class:`kalshi_analytics.strategies.UnknownStrategyError`); an unknown id raises
:class:`kalshi_analytics.errors.NotFoundError`.

Entry points: :func:`~.service.run_backtest`, :func:`~.service.enqueue_backtest`, :func:`~.service.execute_queued`,
:func:`~.service.get_result`, :func:`~.service.get_executions`; pure computation: :func:`~.engine.simulate` over a
:class:`~.data.Dataset` from :func:`~.data.load_dataset`. Fills, fees, the portfolio, settlement, the equity curve
and the metrics are :mod:`kalshi_analytics.trading`'s.
"""

from kalshi_analytics.backtests.data import Dataset, MarketFilter, load_dataset
from kalshi_analytics.backtests.engine import EngineConfig, Execution, SimulationResult, simulate
from kalshi_analytics.backtests.service import (
    BacktestRequest,
    BacktestResultId,
    BacktestResultView,
    check_request,
    enqueue_backtest,
    execute_queued,
    get_executions,
    get_result,
    run_backtest,
    validate_request,
)

__all__ = [
    "BacktestRequest",
    "BacktestResultId",
    "BacktestResultView",
    "Dataset",
    "EngineConfig",
    "Execution",
    "MarketFilter",
    "SimulationResult",
    "check_request",
    "enqueue_backtest",
    "execute_queued",
    "get_executions",
    "get_result",
    "load_dataset",
    "run_backtest",
    "simulate",
    "validate_request",
]
