"""The plain rows the recorder's loops produce and the :class:`~kalshi_analytics.recorder.sink.Sink` writes,
and the builders that make them.

Prices are ``Decimal`` dollars, counts ``Decimal`` contracts, times timezone-aware UTC. Nothing here parses
exchange JSON: the builders take the domain objects of :mod:`kalshi_analytics.kalshi.domain` (markets, trades,
``ticker`` and lifecycle frames, gap events).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from kalshi_analytics.kalshi.domain import (
    ONE,
    Disconnected,
    Market,
    MarketLifecycle,
    PriceLevel,
    SeqGap,
    TickerUpdate,
    Trade,
)


class SnapshotRow(NamedTuple):
    """One row of ``market_snapshots``; prices in Decimal dollars, times aware UTC."""

    ticker: str
    ts: datetime
    source: str  # poll | websocket | backfill
    received_at: datetime
    sequence: int | None = None
    yes_bid: Decimal | None = None
    yes_ask: Decimal | None = None
    no_bid: Decimal | None = None
    no_ask: Decimal | None = None
    last_price: Decimal | None = None
    yes_bid_size: Decimal | None = None
    yes_ask_size: Decimal | None = None
    volume: Decimal | None = None
    open_interest: Decimal | None = None
    status: str | None = None
    raw_data: dict[str, Any] | str | None = None  # the exchange payload; a str is taken as JSON text


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One public trade print (``trades``); ``trade_id`` is the exchange's id and the idempotency key.

    A dataclass, not a NamedTuple, because the column ``count`` would shadow ``tuple.count``.
    """

    trade_id: str
    ticker: str
    ts: datetime  # exchange time (created_time)
    received_at: datetime
    yes_price: Decimal
    no_price: Decimal
    count: Decimal
    taker_side: str | None = None
    is_block_trade: bool | None = None
    source: str = "websocket"  # websocket | poll | backfill

    def as_tuple(self) -> tuple[Any, ...]:
        """The values in ``TRADE_COLUMNS`` order."""
        return (
            self.trade_id,
            self.ticker,
            self.ts,
            self.received_at,
            self.yes_price,
            self.no_price,
            self.count,
            self.taker_side,
            self.is_block_trade,
            self.source,
        )


TRADE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TradeRow))


class OrderbookRow(NamedTuple):
    """A full book (``orderbook_snapshots``): resting bids of both legs, ascending, as Kalshi sends them."""

    ticker: str
    ts: datetime
    received_at: datetime
    source: str  # poll | websocket | backfill
    sequence: int | None
    yes: tuple[PriceLevel, ...]
    no: tuple[PriceLevel, ...]


class MarketRow(NamedTuple):
    """The ``markets`` columns of one market.

    Upserted by ticker. A ``None`` field means "not known by this row", never "clear it": the stored value is kept.
    So a lifecycle event can send just ``ticker``, ``status`` and the settlement (``result``, ``settlement_value``,
    ``settled_at``), and a later poll of stale metadata never erases a known result. A market not stored yet
    needs ``event_ticker`` and ``status`` (NOT NULL columns); a partial row for an unknown ticker is skipped
    and counted (the poll loop brings the full market, settlement included).
    """

    ticker: str
    event_ticker: str | None = None
    series_ticker: str | None = None
    title: str | None = None
    subtitle: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    category: str | None = None
    market_type: str | None = None
    status: str | None = None
    open_time: datetime | None = None
    close_time: datetime | None = None
    expected_expiration_time: datetime | None = None
    result: str | None = None
    settlement_value: Decimal | None = None
    settled_at: datetime | None = None
    notional_value: Decimal | None = None
    price_level_structure: str | None = None
    price_ranges: list[dict[str, str]] | None = None
    volume: Decimal | None = None
    open_interest: Decimal | None = None
    raw: dict[str, Any] | None = None

    @property
    def is_complete(self) -> bool:
        """Enough to insert a market never seen before."""
        return self.event_ticker is not None and self.status is not None


MARKET_COLUMNS: tuple[str, ...] = MarketRow._fields


def market_row_from_domain(m: Market, series_category: str | None, *, series_ticker: str | None = None) -> MarketRow:
    """The ``markets`` row of a REST market; the category comes from the series (Kalshi's markets lack one)."""
    result = str(m.result) if m.result is not None else None
    return MarketRow(
        ticker=m.ticker,
        event_ticker=m.event_ticker,
        series_ticker=series_ticker,
        title=m.title,
        subtitle=m.subtitle,
        yes_sub_title=m.yes_sub_title,
        no_sub_title=m.no_sub_title,
        category=series_category if series_category is not None else m.category,
        market_type=m.market_type,
        status=str(m.status) if m.status is not None else None,
        open_time=m.open_time,
        close_time=m.close_time,
        expected_expiration_time=m.expected_expiration_time,
        result=result or None,  # "" is Kalshi's "not determined yet"
        settlement_value=m.settlement_value if result else None,
        settled_at=m.settlement_ts,
        notional_value=m.notional_value,
        price_level_structure=m.price_level_structure,
        price_ranges=[{"start": str(r.start), "end": str(r.end), "step": str(r.step)} for r in m.price_ranges] or None,
        volume=m.volume,
        open_interest=m.open_interest,
        raw=dict(m.raw) if m.raw is not None else None,
    )


def trade_row(t: Trade, received_at: datetime, source: str) -> TradeRow | None:
    """A ``trades`` row from a domain trade; None when a required value is missing."""
    if t.yes_price is None or t.count is None:
        return None
    no_price = t.no_price if t.no_price is not None else Decimal(1) - t.yes_price
    side = t.taker_outcome_side or t.taker_side
    return TradeRow(
        trade_id=t.trade_id,
        ticker=t.ticker,
        ts=t.created_time or received_at,
        received_at=received_at,
        yes_price=t.yes_price,
        no_price=no_price,
        count=t.count,
        taker_side=str(side) if side is not None else None,
        is_block_trade=t.is_block_trade,
        source=source,
    )


def snapshot_from_market(m: Market, ts: datetime, received_at: datetime, source: str) -> SnapshotRow:
    return SnapshotRow(
        ticker=m.ticker,
        ts=ts,
        source=source,
        received_at=received_at,
        yes_bid=m.yes_bid,
        yes_ask=m.yes_ask,
        no_bid=m.no_bid,
        no_ask=m.no_ask,
        last_price=m.last_price,
        yes_bid_size=m.yes_bid_size,
        yes_ask_size=m.yes_ask_size,
        volume=m.volume,
        open_interest=m.open_interest,
        status=str(m.status) if m.status is not None else None,
        raw_data=dict(m.raw) if m.raw is not None else None,
    )


def snapshot_from_ticker(ev: TickerUpdate, received_at: datetime) -> SnapshotRow:
    """A ``market_snapshots`` row from a ``ticker`` frame; the no side is the complement of the yes side."""
    return SnapshotRow(
        ticker=ev.market_ticker,
        ts=ev.ts or received_at,
        source="websocket",
        received_at=received_at,
        sequence=ev.seq,
        yes_bid=ev.yes_bid,
        yes_ask=ev.yes_ask,
        no_bid=ONE - ev.yes_ask if ev.yes_ask is not None else None,
        no_ask=ONE - ev.yes_bid if ev.yes_bid is not None else None,
        last_price=ev.price,
        yes_bid_size=ev.yes_bid_size,
        yes_ask_size=ev.yes_ask_size,
        volume=ev.volume,
        open_interest=ev.open_interest,
    )


def market_row_from_lifecycle(ev: MarketLifecycle, received_at: datetime) -> MarketRow | None:
    """The partial ``markets`` row a lifecycle event implies (None for events that change no column)."""
    t = ev.market_ticker
    kind = str(ev.event_type)
    result = str(ev.result) if ev.result is not None else None
    if kind == "activated":
        return MarketRow(t, status="active")
    if kind == "deactivated":
        return MarketRow(t, status="inactive")
    if kind == "close_date_updated" and ev.close_ts is not None:
        return MarketRow(t, close_time=ev.close_ts)
    if kind == "determined":
        return MarketRow(t, status="determined", result=result, settlement_value=ev.settlement_value)
    if kind == "settled":
        sv = ev.settlement_value
        if sv is None and result in ("yes", "no"):
            sv = Decimal(1) if result == "yes" else Decimal(0)
        return MarketRow(
            t, status="finalized", result=result, settlement_value=sv, settled_at=ev.settled_ts or received_at
        )
    return None


class GapOpened(NamedTuple):
    """A detected gap. ``key`` is generated by the recorder (e.g. ``uuid4().hex``) and identifies it forever."""

    key: str
    detected_at: datetime
    channel: str  # ticker | trade | orderbook_delta | market_lifecycle_v2 | poll | ...
    sid: int | None
    market_ticker: str | None  # None = the whole subscription
    cause: str  # seq_jump | disconnect | outage | startup | crash | failover | other
    seq_expected: int | None
    seq_received: int | None
    gap_start: datetime
    details: dict[str, Any] | None = None


class GapRepaired(NamedTuple):
    """The end of the gap opened with the same ``key``: repaired, or (``repaired_at`` None and
    ``unrepairable_reason`` set) given up for good; ``details`` are merged into the stored ones."""

    key: str
    gap_end: datetime
    repaired_at: datetime | None
    repair_method: str  # e.g. get_snapshot | rest_backfill | rest_trades
    details: dict[str, Any] | None = None
    unrepairable_reason: str | None = None


def gap_opened(
    event: SeqGap | Disconnected,
    key: str,
    *,
    gap_start: datetime | None,
    details: dict[str, Any] | None = None,
    cause: str | None = None,
) -> GapOpened:
    """The ``feed_gaps`` row of a seq jump (one subscription) or a disconnect (everything: channel ``all``);
    ``cause`` overrides the default (``seq_jump`` / ``disconnect``)."""
    if isinstance(event, SeqGap):
        return GapOpened(
            key=key,
            detected_at=event.at,
            channel=event.channel or "unknown",
            sid=event.sid,
            market_ticker=None,
            cause="seq_jump",
            seq_expected=event.expected,
            seq_received=event.received,
            gap_start=gap_start or event.at,
            details=details,
        )
    return GapOpened(
        key=key,
        detected_at=event.at,
        channel="all",
        sid=None,
        market_ticker=None,
        cause=cause or "disconnect",
        seq_expected=None,
        seq_received=None,
        gap_start=gap_start or event.at,
        details={"reason": event.reason, **(details or {})},
    )


SinkItem = SnapshotRow | TradeRow | OrderbookRow | MarketRow | GapOpened | GapRepaired

__all__ = [
    "MARKET_COLUMNS",
    "TRADE_COLUMNS",
    "GapOpened",
    "GapRepaired",
    "MarketRow",
    "OrderbookRow",
    "SinkItem",
    "SnapshotRow",
    "TradeRow",
    "gap_opened",
    "market_row_from_domain",
    "market_row_from_lifecycle",
    "snapshot_from_market",
    "snapshot_from_ticker",
    "trade_row",
]
