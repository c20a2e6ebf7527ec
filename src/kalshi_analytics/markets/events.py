"""The live stream's market events: their payload models and how a committed row becomes one.

A new snapshot, trade or order book is journaled as the KEY of its row (the sink writes no copy of it); readers
render it with :data:`kalshi_analytics.markets.service.STREAM_PAYLOAD_SQL`, exactly as the REST routes answer
for the same row: a ``snapshot`` is a :class:`~kalshi_analytics.markets.schemas.Snapshot` (as
``getLatestSnapshot``), a ``trade`` a :class:`~kalshi_analytics.markets.schemas.Trade` (as ``listTrades``), an
``orderbook`` an :class:`~kalshi_analytics.markets.schemas.OrderBook` with every level (as ``getOrderBook``).
Events that are not a stored row as it is — a market's status change, a feed gap opened or closed — carry their
payload, rendered here from these models.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kalshi_analytics.events import EventKind, NewEvent
from kalshi_analytics.markets.pricing import TICK


def _price(v: Decimal | None) -> Decimal | None:
    return None if v is None else v.quantize(TICK)


def _event(kind: EventKind, ticker: str | None, model: BaseModel) -> NewEvent:
    return NewEvent(kind, ticker, model.__pydantic_serializer__.to_json(model).decode())


# ------------------------------------------------------------------------------------------ payload models
class MarketStatusEvent(BaseModel):
    """``market_status``: the market's status or result changed (or the market was stored for the first time)."""

    ticker: str
    status: str
    previous_status: str | None = Field(description="null for a market stored for the first time")
    result: str | None
    settlement_value: Decimal | None
    settled_at: datetime | None
    close_time: datetime | None


class GapOpenedEvent(BaseModel):
    """``gap_opened``: the recorder may have missed data (``ticker`` null = a whole subscription or connection)."""

    key: str
    ticker: str | None
    channel: str
    cause: str
    gap_start: datetime
    detected_at: datetime
    seq_expected: int | None
    seq_received: int | None


class GapRepairedEvent(BaseModel):
    """``gap_repaired``: a gap closed — repaired (``repaired_at``), or given up (``unrepairable_reason``)."""

    key: str
    ticker: str | None
    gap_end: datetime
    repaired_at: datetime | None
    repair_method: str
    unrepairable_reason: str | None


class StreamReady(BaseModel):
    """``ready`` (its SSE id is the position the stream continues from)."""

    last_event_id: int
    resumed: bool = Field(description="true when the events after the client's Last-Event-ID follow")
    tickers: list[str]
    kinds: list[str]


class StreamReset(BaseModel):
    """``reset``: the Last-Event-ID cannot be resumed; refetch state over REST (the stream starts afresh)."""

    reason: str
    last_event_id: str = Field(description="the Last-Event-ID the client sent")


# ---------------------------------------------------------------------------------------------- renderers
def snapshot_event(row: Any) -> NewEvent:
    """A new ``market_snapshots`` row (anything with its key attributes) as a ``snapshot`` event."""
    return NewEvent(EventKind.SNAPSHOT, row.ticker, ts=row.ts, source=row.source)


def trade_event(row: Any) -> NewEvent:
    """A new ``trades`` row as a ``trade`` event."""
    return NewEvent(EventKind.TRADE, row.ticker, ref=row.trade_id)


def orderbook_event(row: Any) -> NewEvent:
    """A new ``orderbook_snapshots`` row as an ``orderbook`` event."""
    return NewEvent(EventKind.ORDERBOOK, row.ticker, ts=row.ts, source=row.source)


def market_status_event(
    *,
    ticker: str,
    status: str,
    previous_status: str | None,
    result: str | None,
    settlement_value: Decimal | None,
    settled_at: datetime | None,
    close_time: datetime | None,
) -> NewEvent:
    model = MarketStatusEvent.model_construct(
        ticker=ticker,
        status=status,
        previous_status=previous_status,
        result=result,
        settlement_value=_price(settlement_value),
        settled_at=settled_at,
        close_time=close_time,
    )
    return _event(EventKind.MARKET_STATUS, ticker, model)


def gap_opened_event(row: Any) -> NewEvent:
    """A ``feed_gaps`` opening (the recorder's ``GapOpened``) as a ``gap_opened`` event."""
    model = GapOpenedEvent.model_construct(
        key=row.key,
        ticker=row.market_ticker,
        channel=row.channel,
        cause=row.cause,
        gap_start=row.gap_start,
        detected_at=row.detected_at,
        seq_expected=row.seq_expected,
        seq_received=row.seq_received,
    )
    return _event(EventKind.GAP_OPENED, row.market_ticker, model)


def gap_repaired_event(row: Any, ticker: str | None) -> NewEvent:
    """A ``feed_gaps`` closing (the recorder's ``GapRepaired``) of the gap about ``ticker``."""
    model = GapRepairedEvent.model_construct(
        key=row.key,
        ticker=ticker,
        gap_end=row.gap_end,
        repaired_at=row.repaired_at,
        repair_method=row.repair_method,
        unrepairable_reason=row.unrepairable_reason,
    )
    return _event(EventKind.GAP_REPAIRED, ticker, model)
