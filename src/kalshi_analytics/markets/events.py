"""The live stream's market events: their payload models and how a committed row becomes one.

The recorder's sink renders each new row it commits into a journal event (:mod:`kalshi_analytics.events`) with
these functions, so the stream sends exactly what the REST routes answer for the same row: a ``snapshot`` is a
:class:`~kalshi_analytics.markets.schemas.Snapshot` (as ``getLatestSnapshot``), a ``trade`` a
:class:`~kalshi_analytics.markets.schemas.Trade` (as ``listTrades``), an ``orderbook`` an
:class:`~kalshi_analytics.markets.schemas.OrderBook` with every level (as ``getOrderBook``). Prices are put on
the 0.0001 grid of ``NUMERIC(10,4)``, as the database returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kalshi_analytics.events import EventKind, NewEvent
from kalshi_analytics.markets.pricing import TICK, implied_probability_with_source
from kalshi_analytics.markets.schemas import BookLevel, OrderBook, Snapshot, Trade

ONE = Decimal(1)


def _tick(v: Decimal) -> Decimal:
    return v.quantize(TICK)


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
def snapshot_event(row: Any, max_spread: Decimal) -> NewEvent:
    """A ``market_snapshots`` row (anything with its column attributes) as a ``snapshot`` event."""
    yes_bid, yes_ask, last_price = _price(row.yes_bid), _price(row.yes_ask), _price(row.last_price)
    p, src = implied_probability_with_source(yes_bid, yes_ask, last_price, max_spread)
    snap = Snapshot.model_construct(
        ticker=row.ticker,
        ts=row.ts,
        received_at=row.received_at,
        source=row.source,
        sequence=row.sequence,
        yes_bid=yes_bid,
        yes_ask=yes_ask,
        no_bid=_price(row.no_bid),
        no_ask=_price(row.no_ask),
        last_price=last_price,
        yes_bid_size=row.yes_bid_size,
        yes_ask_size=row.yes_ask_size,
        volume=row.volume,
        open_interest=row.open_interest,
        status=row.status,
        implied_probability=p,
        implied_probability_source=src,
    )
    return _event(EventKind.SNAPSHOT, row.ticker, snap)


def trade_event(row: Any) -> NewEvent:
    """A ``trades`` row as a ``trade`` event."""
    trade = Trade.model_construct(
        trade_id=row.trade_id,
        ticker=row.ticker,
        ts=row.ts,
        yes_price=_tick(row.yes_price),
        no_price=_tick(row.no_price),
        count=row.count,
        taker_side=row.taker_side,
        is_block_trade=row.is_block_trade,
    )
    return _event(EventKind.TRADE, row.ticker, trade)


def orderbook_event(
    *,
    ticker: str,
    ts: datetime,
    received_at: datetime,
    source: str,
    sequence: int | None,
    yes: Sequence[tuple[Decimal, Decimal]],
    no: Sequence[tuple[Decimal, Decimal]],
) -> NewEvent:
    """A full book — (price, size) bids of each leg in any order — as an ``orderbook`` event, best first."""
    yes_levels = [BookLevel.model_construct(price=_tick(p), size=s) for p, s in sorted(yes, reverse=True)]
    no_levels = [BookLevel.model_construct(price=_tick(p), size=s) for p, s in sorted(no, reverse=True)]
    book = OrderBook.model_construct(
        ticker=ticker,
        ts=ts,
        received_at=received_at,
        source=source,
        sequence=sequence,
        yes=yes_levels,
        no=no_levels,
        best_yes_bid=yes_levels[0].price if yes_levels else None,
        best_yes_ask=ONE - no_levels[0].price if no_levels else None,
    )
    return _event(EventKind.ORDERBOOK, ticker, book)


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
