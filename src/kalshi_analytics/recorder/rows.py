"""The plain rows the recorder's loops produce and the :class:`~kalshi_analytics.recorder.sink.Sink` writes.

Prices are ``Decimal`` dollars, counts ``Decimal`` contracts, times timezone-aware UTC. Nothing here parses
exchange JSON: the loops build rows from the domain objects of :mod:`kalshi_analytics.kalshi.domain`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from kalshi_analytics.kalshi.domain import Market, PriceLevel
from kalshi_analytics.recorder.bulk import SnapshotRow


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


class GapOpened(NamedTuple):
    """A detected gap. ``key`` is generated by the recorder (e.g. ``uuid4().hex``) and identifies it forever."""

    key: str
    detected_at: datetime
    channel: str  # ticker | trade | orderbook_delta | market_lifecycle_v2 | poll | ...
    sid: int | None
    market_ticker: str | None  # None = the whole subscription
    cause: str  # seq_jump | disconnect | outage | startup | other
    seq_expected: int | None
    seq_received: int | None
    gap_start: datetime
    details: dict[str, Any] | None = None


class GapRepaired(NamedTuple):
    """The repair of the gap opened with the same ``key``; ``details`` are merged into the stored ones."""

    key: str
    gap_end: datetime
    repaired_at: datetime
    repair_method: str  # e.g. get_snapshot | rest_backfill | rest_trades
    details: dict[str, Any] | None = None


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
    "market_row_from_domain",
]
