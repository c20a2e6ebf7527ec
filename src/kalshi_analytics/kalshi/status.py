"""Kalshi's vocabularies: market statuses (response enum vs. query filter), sides, lifecycle events.

KALSHI_API.md §4: the ``status`` *query filter* of ``GET /markets`` and ``GET /events`` speaks a different
vocabulary from the ``status`` field of the returned market: ``?status=open`` returns markets whose status is
``active`` (or ``inactive`` during trading hours), ``?status=settled`` returns ``finalized`` ones, and so on.
Values we do not know are kept as plain strings by the parsers, never rejected.
"""

from __future__ import annotations

from enum import StrEnum


class MarketStatus(StrEnum):
    """The ``status`` of a market object (response vocabulary)."""

    INITIALIZED = "initialized"
    INACTIVE = "inactive"
    ACTIVE = "active"
    CLOSED = "closed"
    DETERMINED = "determined"
    DISPUTED = "disputed"
    AMENDED = "amended"
    FINALIZED = "finalized"
    SETTLED = "settled"  # older response enum (≈ finalized)


class MarketStatusFilter(StrEnum):
    """The ``status=`` query parameter of ``GET /markets`` / ``GET /events`` (filter vocabulary)."""

    UNOPENED = "unopened"
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"
    SETTLED = "settled"


#: filter value → the response statuses it returns.
STATUS_FILTER_MATCHES: dict[MarketStatusFilter, frozenset[MarketStatus]] = {
    MarketStatusFilter.UNOPENED: frozenset({MarketStatus.INITIALIZED}),
    MarketStatusFilter.OPEN: frozenset({MarketStatus.ACTIVE, MarketStatus.INACTIVE}),
    MarketStatusFilter.PAUSED: frozenset({MarketStatus.INACTIVE}),
    MarketStatusFilter.CLOSED: frozenset(
        {MarketStatus.CLOSED, MarketStatus.DETERMINED, MarketStatus.DISPUTED, MarketStatus.AMENDED}
    ),
    MarketStatusFilter.SETTLED: frozenset({MarketStatus.FINALIZED, MarketStatus.SETTLED}),
}


def status_matches(status_filter: MarketStatusFilter | str, status: str) -> bool:
    """Whether a market whose response status is ``status`` is returned by ``?status=<status_filter>``."""
    return status in STATUS_FILTER_MATCHES[MarketStatusFilter(status_filter)]


def filters_matching(status: str) -> frozenset[MarketStatusFilter]:
    """The filter values that return a market with response status ``status`` (empty for unknown statuses)."""
    return frozenset(f for f, statuses in STATUS_FILTER_MATCHES.items() if status in statuses)


#: How far along its life a market is. A market only moves forward (``active`` and ``inactive`` alternate at the
#: same rank; a dispute and its amendment sit between determination and finalization), so a lower rank after a
#: higher one means an out-of-date answer, not a real change.
STATUS_RANK: dict[str, int] = {
    MarketStatus.INITIALIZED: 0,
    MarketStatus.INACTIVE: 1,
    MarketStatus.ACTIVE: 1,
    MarketStatus.CLOSED: 2,
    MarketStatus.DETERMINED: 3,
    MarketStatus.DISPUTED: 4,
    MarketStatus.AMENDED: 5,
    MarketStatus.FINALIZED: 6,
    MarketStatus.SETTLED: 6,
}


def status_rank(status: str | None) -> int | None:
    """The rank of a response status in :data:`STATUS_RANK`; None for None and for statuses we do not know."""
    return None if status is None else STATUS_RANK.get(status)


def is_tradable(status: str) -> bool:
    """Only ``active`` markets accept orders."""
    return status == MarketStatus.ACTIVE


class Side(StrEnum):
    """Outcome side of a contract (YES or NO)."""

    YES = "yes"
    NO = "no"


class BookSide(StrEnum):
    """Side of the YES book a taker hit (bid ≡ yes)."""

    BID = "bid"
    ASK = "ask"


class MarketResult(StrEnum):
    YES = "yes"
    NO = "no"
    SCALAR = "scalar"
    VOID = "void"
    NONE = ""


class LifecycleEvent(StrEnum):
    """``event_type`` of a ``market_lifecycle_v2`` message."""

    CREATED = "created"
    ACTIVATED = "activated"
    DEACTIVATED = "deactivated"
    CLOSE_DATE_UPDATED = "close_date_updated"
    DETERMINED = "determined"
    SETTLED = "settled"
    PRICE_LEVEL_STRUCTURE_UPDATED = "price_level_structure_updated"
    METADATA_UPDATED = "metadata_updated"
    FRACTIONAL_TRADING_UPDATED = "fractional_trading_updated"


class Channel(StrEnum):
    """Market-data WebSocket channels (KALSHI_API.md §5)."""

    TICKER = "ticker"
    TRADE = "trade"
    ORDERBOOK_DELTA = "orderbook_delta"
    MARKET_LIFECYCLE_V2 = "market_lifecycle_v2"


#: Allowed ``period_interval`` values (minutes) of the candlestick endpoints.
CANDLE_INTERVALS = frozenset({1, 60, 1440})
