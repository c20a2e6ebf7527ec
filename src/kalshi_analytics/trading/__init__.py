"""The trading core shared by backtests and paper trading (no I/O).

Order intents → fill model (:mod:`.fills`) → fee model (:mod:`.fees`) → portfolio (:mod:`.portfolio`: cash,
FIFO lots, average prices, realised/unrealised P&L) → settlement at the time each result became known →
equity sampled intraday from the window's start (:mod:`.equity`) → metrics (:mod:`.metrics`).
:class:`~.core.TradingCore` is the one implementation; the backtest engine and the live runner only feed it
events (see its module docstring for the calling protocol).
"""

from kalshi_analytics.trading.core import CoreConfig, MarketSpec, Quotes, TradingCore, signal_record
from kalshi_analytics.trading.equity import EquityCurve, MarkTape, equity_curve
from kalshi_analytics.trading.fees import FeeModel, KalshiFeeModel, NoFees, SeriesFees
from kalshi_analytics.trading.fills import DisplayedLiquidity, Fill, FillModel, Level
from kalshi_analytics.trading.metrics import compute_metrics
from kalshi_analytics.trading.portfolio import Execution, Portfolio
from kalshi_analytics.trading.result import TradingResult

__all__ = [
    "CoreConfig",
    "DisplayedLiquidity",
    "EquityCurve",
    "Execution",
    "FeeModel",
    "Fill",
    "FillModel",
    "KalshiFeeModel",
    "Level",
    "MarkTape",
    "MarketSpec",
    "NoFees",
    "Portfolio",
    "Quotes",
    "SeriesFees",
    "TradingCore",
    "TradingResult",
    "compute_metrics",
    "equity_curve",
    "signal_record",
]
