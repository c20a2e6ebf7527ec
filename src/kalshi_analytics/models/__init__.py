"""ORM tables, in one place because they cross features."""

from kalshi_analytics.models.backtests import BacktestExecution, BacktestResult
from kalshi_analytics.models.base import Base
from kalshi_analytics.models.markets import Event, Market, MarketCloseTime, Series
from kalshi_analytics.models.paper import (
    LiveRunnerHeartbeat,
    LiveRunnerLease,
    PaperEquity,
    PaperFill,
    PaperPosition,
    PaperSession,
    PaperSessionEvent,
)
from kalshi_analytics.models.recorder import FeedGap, RecorderHeartbeat, RecorderLease
from kalshi_analytics.models.snapshots import (
    MarketCandle1m,
    MarketCandleBlock,
    MarketSnapshot,
    MarketSnapshotChunk,
    OrderbookSnapshot,
)
from kalshi_analytics.models.stream import StreamBatch, StreamHead
from kalshi_analytics.models.trades import Trade

__all__ = [
    "BacktestExecution",
    "BacktestResult",
    "Base",
    "Event",
    "FeedGap",
    "LiveRunnerHeartbeat",
    "LiveRunnerLease",
    "Market",
    "MarketCandle1m",
    "MarketCandleBlock",
    "MarketCloseTime",
    "MarketSnapshot",
    "MarketSnapshotChunk",
    "OrderbookSnapshot",
    "PaperEquity",
    "PaperFill",
    "PaperPosition",
    "PaperSession",
    "PaperSessionEvent",
    "RecorderHeartbeat",
    "RecorderLease",
    "Series",
    "StreamBatch",
    "StreamHead",
    "Trade",
]
