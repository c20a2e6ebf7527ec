"""The normalised domain form of Kalshi data: what the rest of the product sees.

Prices are exact ``Decimal`` dollars (0–1 = probability), counts are exact ``Decimal`` contracts, times are
timezone-aware UTC ``datetime``. The legacy integer-cent form and the current ``*_dollars``/``*_fp`` form of the
same data produce equal objects. Enumerated fields hold the enum member when known and the raw string otherwise.

Every class is a slotted dataclass, frozen except the four built for nearly every WebSocket frame
(``OrderbookDelta``, ``TickerUpdate``, ``TradeUpdate`` and its ``Trade``): a frozen class's ``__init__`` sets each
field through ``object.__setattr__``, twice the cost of a plain one (~0.6 µs a delta, ~4 % of the recorder's
ingest). They stay hashable like the rest (``unsafe_hash``), so treat them as read-only: nothing in the product
changes one after it is built.
``received_at`` (our receipt time) and ``raw`` (the original JSON object) are excluded from equality.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from kalshi_analytics.kalshi.status import BookSide, LifecycleEvent, MarketResult, MarketStatus, Side

ONE = Decimal(1)
T = TypeVar("T")


class PriceLevel(NamedTuple):
    """One resting-bid level of a book: price in dollars, size in contracts (Kalshi's ``count``)."""

    price: Decimal
    size: Decimal


Levels = tuple[PriceLevel, ...]


# --------------------------------------------------------------------------------------------------- REST objects
@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRange:
    """One band of a market's tick grid (``price_ranges``)."""

    start: Decimal
    end: Decimal
    step: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Market:
    ticker: str
    event_ticker: str | None = None
    market_type: str | None = None
    title: str | None = None
    subtitle: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    category: str | None = None
    status: MarketStatus | str | None = None
    result: MarketResult | str | None = None
    created_time: datetime | None = None
    updated_time: datetime | None = None
    open_time: datetime | None = None
    close_time: datetime | None = None
    expected_expiration_time: datetime | None = None
    expiration_time: datetime | None = None
    latest_expiration_time: datetime | None = None
    settlement_ts: datetime | None = None
    settlement_timer_seconds: int | None = None
    yes_bid: Decimal | None = None
    yes_ask: Decimal | None = None
    no_bid: Decimal | None = None
    no_ask: Decimal | None = None
    last_price: Decimal | None = None
    yes_bid_size: Decimal | None = None
    yes_ask_size: Decimal | None = None
    previous_yes_bid: Decimal | None = None
    previous_yes_ask: Decimal | None = None
    previous_price: Decimal | None = None
    volume: Decimal | None = None
    volume_24h: Decimal | None = None
    open_interest: Decimal | None = None
    liquidity: Decimal | None = None
    notional_value: Decimal | None = None
    settlement_value: Decimal | None = None
    can_close_early: bool | None = None
    expiration_value: str | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    functional_strike: str | None = None
    custom_strike: Mapping[str, Any] | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    price_level_structure: str | None = None
    price_ranges: tuple[PriceRange, ...] = ()
    tick_size: Decimal | None = None
    mve_collection_ticker: str | None = None
    is_provisional: bool | None = None
    exchange_index: int | None = None
    #: ``default`` (no settlement floor, ever) or ``floor``; ``None`` from payloads older than spec 3.31.
    settlement_bounds_type: str | None = None
    #: the minimum YES payout, only on ``floor`` markets.
    settlement_floor: Decimal | None = None
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementSource:
    name: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    event_ticker: str
    series_ticker: str | None = None
    title: str | None = None
    sub_title: str | None = None
    category: str | None = None
    mutually_exclusive: bool | None = None
    collateral_return_type: str | None = None
    strike_date: datetime | None = None
    strike_period: str | None = None
    last_updated_ts: datetime | None = None
    settlement_sources: tuple[SettlementSource, ...] = ()
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None
    exchange_index: int | None = None
    markets: tuple[Market, ...] = ()
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    ticker: str
    title: str | None = None
    category: str | None = None
    frequency: str | None = None
    tags: tuple[str, ...] = ()
    settlement_sources: tuple[SettlementSource, ...] = ()
    contract_url: str | None = None
    contract_terms_url: str | None = None
    fee_type: str | None = None
    fee_multiplier: Decimal | None = None
    additional_prohibitions: tuple[str, ...] = ()
    volume: Decimal | None = None
    last_updated_ts: datetime | None = None
    exchange_index: int | None = None
    #: every category the series is listed under (older payloads send only ``category``: then just that one).
    categories: tuple[str, ...] = ()
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesFeeChange:
    """A series' fee structure change, scheduled (or, with ``show_historical``, past)."""

    id: str
    series_ticker: str
    fee_type: str | None
    fee_multiplier: Decimal | None
    scheduled_ts: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFeeChange:
    """An event's fee override change; both overrides ``None`` = the override is cleared (series fees apply)."""

    id: str
    event_ticker: str
    series_ticker: str | None
    fee_type_override: str | None
    fee_multiplier_override: Decimal | None
    scheduled_ts: datetime | None


@dataclass(slots=True, kw_only=True, unsafe_hash=True)  # not frozen: built per frame (module docstring)
class Trade:
    """A public trade print (REST ``/markets/trades`` or the WS ``trade`` channel)."""

    trade_id: str
    ticker: str
    yes_price: Decimal | None
    no_price: Decimal | None
    count: Decimal | None
    created_time: datetime | None
    taker_side: Side | str | None = None
    taker_outcome_side: Side | str | None = None
    taker_book_side: BookSide | str | None = None
    is_block_trade: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderBook:
    """Resting bids only, each side ascending by price (best bid = last). NO prices are NO-leg prices."""

    ticker: str | None
    yes: Levels = ()
    no: Levels = ()

    @property
    def best_yes_bid(self) -> Decimal | None:
        return self.yes[-1].price if self.yes else None

    @property
    def best_no_bid(self) -> Decimal | None:
        return self.no[-1].price if self.no else None

    @property
    def best_yes_ask(self) -> Decimal | None:
        """1 − best NO bid (buying YES = selling NO)."""
        return ONE - self.no[-1].price if self.no else None

    @property
    def best_no_ask(self) -> Decimal | None:
        return ONE - self.yes[-1].price if self.yes else None


@dataclass(frozen=True, slots=True, kw_only=True)
class BidAskOhlc:
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceOhlc:
    """Trade-price candle; every field ``None`` when no trade happened in the period (``previous`` may remain)."""

    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    mean: Decimal | None = None
    previous: Decimal | None = None
    min: Decimal | None = None
    max: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Candlestick:
    end_period_ts: datetime
    yes_bid: BidAskOhlc = field(default_factory=BidAskOhlc)
    yes_ask: BidAskOhlc = field(default_factory=BidAskOhlc)
    price: PriceOhlc = field(default_factory=PriceOhlc)
    volume: Decimal | None = None
    open_interest: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeIndexStatus:
    """The status of one exchange shard (``exchange_index``)."""

    exchange_index: int
    description: str | None = None
    exchange_active: bool | None = None
    trading_active: bool | None = None
    intra_exchange_transfers_active: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeStatus:
    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: datetime | None = None
    intra_exchange_transfers_active: bool | None = None
    exchange_index_statuses: tuple[ExchangeIndexStatus, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketHistoryPoint:
    """A point of the deprecated ``GET /markets/{ticker}/history`` (legacy cents era)."""

    ts: datetime
    yes_bid: Decimal | None = None
    yes_ask: Decimal | None = None
    no_bid: Decimal | None = None
    no_ask: Decimal | None = None
    yes_price: Decimal | None = None
    volume: Decimal | None = None
    open_interest: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paginated listing; ``cursor`` is ``None`` on the last page."""

    items: tuple[T, ...]
    cursor: str | None


# ---------------------------------------------------------------------------------------------- WebSocket messages
@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionInfo:
    """One live subscription as reported by ``subscribed`` / ``list_subscriptions``."""

    channel: str
    sid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribed:
    """``{"type": "subscribed"}``: answer to a ``subscribe`` command."""

    id: int | None
    sid: int
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandOk:
    """``{"type": "ok"}``: answer to ``update_subscription`` (tickers) or ``list_subscriptions`` (subscriptions)."""

    id: int | None
    sid: int | None = None
    seq: int | None = None
    market_tickers: tuple[str, ...] | None = None
    subscriptions: tuple[SubscriptionInfo, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribed:
    id: int | None
    sid: int | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandError:
    """``{"type": "error"}``: a command was rejected (``code`` is Kalshi's numeric WS error code)."""

    id: int | None
    code: int | None
    message: str
    sid: int | None = None
    market_ticker: str | None = None


@dataclass(slots=True, kw_only=True, unsafe_hash=True)  # not frozen: built per frame (module docstring)
class TickerUpdate:
    """``ticker`` channel: top of book and market stats whenever one changes."""

    sid: int | None
    seq: int | None
    market_ticker: str
    market_id: str | None
    price: Decimal | None
    yes_bid: Decimal | None
    yes_ask: Decimal | None
    volume: Decimal | None
    open_interest: Decimal | None
    yes_bid_size: Decimal | None = None
    yes_ask_size: Decimal | None = None
    last_trade_size: Decimal | None = None
    dollar_volume: Decimal | None = None
    dollar_open_interest: Decimal | None = None
    ts: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = field(default=None, compare=False)


@dataclass(slots=True, kw_only=True, unsafe_hash=True)  # not frozen: built per frame (module docstring)
class TradeUpdate:
    """``trade`` channel: one public trade (``trade.created_time`` is the exchange time)."""

    sid: int | None
    seq: int | None
    trade: Trade
    received_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderbookSnapshot:
    """``orderbook_snapshot``: replaces the market's book (bids only, ascending)."""

    sid: int | None
    seq: int | None
    market_id: str | None
    book: OrderBook
    received_at: datetime | None = field(default=None, compare=False)

    @property
    def market_ticker(self) -> str:
        return self.book.ticker or ""


@dataclass(slots=True, kw_only=True, unsafe_hash=True)  # not frozen: built per frame (module docstring)
class OrderbookDelta:
    """``orderbook_delta``: add ``delta`` (signed) contracts to level (``side``, ``price``); ≤ 0 removes it."""

    sid: int | None
    seq: int | None
    market_ticker: str
    market_id: str | None
    side: Side | str
    price: Decimal
    delta: Decimal
    ts: datetime | None = None
    client_order_id: str | None = None
    received_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketLifecycle:
    """``market_lifecycle_v2``: status changes, determination, settlement, metadata of a market."""

    sid: int | None
    seq: int | None
    event_type: LifecycleEvent | str
    market_ticker: str
    open_ts: datetime | None = None
    close_ts: datetime | None = None
    determination_ts: datetime | None = None
    settled_ts: datetime | None = None
    result: MarketResult | str | None = None
    settlement_value: Decimal | None = None
    is_deactivated: bool | None = None
    price_level_structure: str | None = None
    price_ranges: tuple[PriceRange, ...] = ()
    exchange_index: int | None = None
    additional_metadata: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    received_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventLifecycle:
    """``event_lifecycle`` (on the ``market_lifecycle_v2`` channel): an event was created or changed."""

    sid: int | None
    seq: int | None
    event_ticker: str
    series_ticker: str | None = None
    title: str | None = None
    subtitle: str | None = None
    collateral_return_type: str | None = None
    strike_date: datetime | None = None
    strike_period: str | None = None
    exchange_index: int | None = None
    received_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFeeUpdate:
    """``event_fee_update``: an event's fee override changed (``None`` = cleared)."""

    sid: int | None
    seq: int | None
    event_ticker: str
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None
    received_at: datetime | None = field(default=None, compare=False)


#: Everything :func:`~kalshi_analytics.kalshi.wire.parse_ws_message` can return.
WsResponse = Subscribed | CommandOk | Unsubscribed | CommandError
WsData = (
    TickerUpdate | TradeUpdate | OrderbookSnapshot | OrderbookDelta | MarketLifecycle | EventLifecycle | EventFeeUpdate
)
WsMessage = WsResponse | WsData


# ------------------------------------------------------------------------------------------------- control events
@dataclass(frozen=True, slots=True, kw_only=True)
class SeqGap:
    """Subscription ``sid`` skipped from ``expected`` to ``received``: its books are stale, re-snapshot them.

    The frame that revealed the gap is still delivered right after this event.
    """

    sid: int
    channel: str | None
    expected: int
    received: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected:
    """The connection dropped (or the watchdog killed a silent one): a gap in every subscription."""

    at: datetime
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnected:
    """A new connection is up; every subscription is being re-made on it (new sids, seqs restart).

    Emitted before any frame of the new connection; ``attempt`` counts the connects that failed before it.
    """

    at: datetime
    attempt: int
    down_seconds: float | None


WsControl = SeqGap | Disconnected | Reconnected
WsEvent = WsMessage | WsControl
