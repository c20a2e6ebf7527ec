"""Wire schemas (pydantic v2) of Kalshi's REST bodies and WebSocket frames, and their conversion to the domain form.

This module is the only place in the product that reads Kalshi JSON. Each wire model accepts both the current
form (``*_dollars`` strings, ``*_fp`` counts, ``ts_ms``) and the legacy one (integer cents and counts, ``ts`` in
Unix seconds or RFC3339); unknown fields are ignored; unknown enum values are kept as strings.

Entry points:

- :func:`parse_ws_message` — one WebSocket text frame → a domain message (hot path, pydantic-core JSON parsing
  over a union discriminated on ``type``).
- ``parse_*`` functions for REST bodies (``bytes``/``str``) and ``*_from_dict`` for already-decoded objects.
- :func:`api_error_from_body` — any of Kalshi's three error-body shapes → :class:`KalshiApiError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kalshi_analytics.kalshi._convert import (
    cents,
    count,
    dollars,
    enum_or_str,
    from_ms,
    levels_from,
    parse_time,
    price,
    traded_price,
    ws_time,
)
from kalshi_analytics.kalshi.domain import (
    ONE,
    BidAskOhlc,
    Candlestick,
    CommandError,
    CommandOk,
    Event,
    EventFeeChange,
    EventFeeUpdate,
    EventLifecycle,
    ExchangeIndexStatus,
    ExchangeStatus,
    Market,
    MarketHistoryPoint,
    MarketLifecycle,
    OrderBook,
    OrderbookDelta,
    OrderbookSnapshot,
    Page,
    PriceLevel,
    PriceOhlc,
    PriceRange,
    Series,
    SeriesFeeChange,
    SettlementSource,
    Subscribed,
    SubscriptionInfo,
    TickerUpdate,
    Trade,
    TradeUpdate,
    Unsubscribed,
    WsMessage,
)
from kalshi_analytics.kalshi.errors import KalshiApiError, KalshiProtocolError
from kalshi_analytics.kalshi.hot_frames import parse_hot_frame
from kalshi_analytics.kalshi.status import BookSide, LifecycleEvent, MarketResult, MarketStatus, Side

#: A legacy price field: JSON int (or float) = cents, string = dollars (see ``_convert.cents``). No ``Decimal`` in
#: this union on purpose: in JSON mode pydantic would turn a string into a Decimal and lose the unit distinction.
Cents = int | float | str | None
#: Any timestamp form: Unix seconds, RFC3339 string.
AnyTime = int | Decimal | str | None


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


W = TypeVar("W", bound=_Wire)
R = TypeVar("R")


def _no_price(yes: Decimal | None, no: Decimal | None) -> Decimal | None:
    return no if no is not None or yes is None else ONE - yes


# ======================================================================================================= REST wire
class PriceRangeWire(_Wire):
    start: Decimal
    end: Decimal
    step: Decimal

    def to_domain(self) -> PriceRange:
        return PriceRange(start=self.start, end=self.end, step=self.step)


def _ranges(values: Sequence[PriceRangeWire] | None) -> tuple[PriceRange, ...]:
    return tuple(r.to_domain() for r in values) if values else ()


class MarketWire(_Wire):
    ticker: str
    event_ticker: str | None = None
    market_type: str | None = None
    title: str | None = None
    subtitle: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    category: str | None = None
    status: str | None = None
    result: str | None = None
    created_time: AnyTime = None
    updated_time: AnyTime = None
    open_time: AnyTime = None
    close_time: AnyTime = None
    expected_expiration_time: AnyTime = None
    expiration_time: AnyTime = None
    latest_expiration_time: AnyTime = None
    settlement_ts: AnyTime = None
    settlement_timer_seconds: int | None = None
    yes_bid_dollars: Decimal | None = None
    yes_bid: Cents = None
    yes_ask_dollars: Decimal | None = None
    yes_ask: Cents = None
    no_bid_dollars: Decimal | None = None
    no_bid: Cents = None
    no_ask_dollars: Decimal | None = None
    no_ask: Cents = None
    last_price_dollars: Decimal | None = None
    last_price: Cents = None
    yes_bid_size_fp: Decimal | None = None
    yes_ask_size_fp: Decimal | None = None
    previous_yes_bid_dollars: Decimal | None = None
    previous_yes_bid: Cents = None
    previous_yes_ask_dollars: Decimal | None = None
    previous_yes_ask: Cents = None
    previous_price_dollars: Decimal | None = None
    previous_price: Cents = None
    volume_fp: Decimal | None = None
    volume: Decimal | None = None
    volume_24h_fp: Decimal | None = None
    volume_24h: Decimal | None = None
    open_interest_fp: Decimal | None = None
    open_interest: Decimal | None = None
    liquidity_dollars: Decimal | None = None
    liquidity: Cents = None
    notional_value_dollars: Decimal | None = None
    notional_value: Cents = None
    settlement_value_dollars: Decimal | None = None
    settlement_value: Cents = None
    can_close_early: bool | None = None
    expiration_value: str | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    functional_strike: str | None = None
    custom_strike: dict[str, Any] | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    price_level_structure: str | None = None
    price_ranges: list[PriceRangeWire] | None = None
    tick_size: Cents = None
    mve_collection_ticker: str | None = None
    is_provisional: bool | None = None
    exchange_index: int | None = None
    settlement_bounds_type: str | None = None
    settlement_floor_dollars: Decimal | None = None

    def to_domain(self, raw: Mapping[str, Any] | None = None) -> Market:
        return Market(
            ticker=self.ticker,
            event_ticker=self.event_ticker,
            market_type=self.market_type,
            title=self.title,
            subtitle=self.subtitle,
            yes_sub_title=self.yes_sub_title,
            no_sub_title=self.no_sub_title,
            category=self.category,
            status=enum_or_str(MarketStatus, self.status),
            result=enum_or_str(MarketResult, self.result),
            created_time=parse_time(self.created_time),
            updated_time=parse_time(self.updated_time),
            open_time=parse_time(self.open_time),
            close_time=parse_time(self.close_time),
            expected_expiration_time=parse_time(self.expected_expiration_time),
            expiration_time=parse_time(self.expiration_time),
            latest_expiration_time=parse_time(self.latest_expiration_time),
            settlement_ts=parse_time(self.settlement_ts),
            settlement_timer_seconds=self.settlement_timer_seconds,
            yes_bid=price(self.yes_bid_dollars, self.yes_bid),
            yes_ask=price(self.yes_ask_dollars, self.yes_ask),
            no_bid=price(self.no_bid_dollars, self.no_bid),
            no_ask=price(self.no_ask_dollars, self.no_ask),
            last_price=traded_price(self.last_price_dollars, self.last_price),
            yes_bid_size=self.yes_bid_size_fp,
            yes_ask_size=self.yes_ask_size_fp,
            previous_yes_bid=price(self.previous_yes_bid_dollars, self.previous_yes_bid),
            previous_yes_ask=price(self.previous_yes_ask_dollars, self.previous_yes_ask),
            previous_price=traded_price(self.previous_price_dollars, self.previous_price),
            volume=count(self.volume_fp, self.volume),
            volume_24h=count(self.volume_24h_fp, self.volume_24h),
            open_interest=count(self.open_interest_fp, self.open_interest),
            liquidity=price(self.liquidity_dollars, self.liquidity),
            notional_value=price(self.notional_value_dollars, self.notional_value),
            settlement_value=price(self.settlement_value_dollars, self.settlement_value),
            can_close_early=self.can_close_early,
            expiration_value=self.expiration_value,
            strike_type=self.strike_type,
            floor_strike=self.floor_strike,
            cap_strike=self.cap_strike,
            functional_strike=self.functional_strike,
            custom_strike=self.custom_strike,
            rules_primary=self.rules_primary,
            rules_secondary=self.rules_secondary,
            price_level_structure=self.price_level_structure,
            price_ranges=_ranges(self.price_ranges),
            tick_size=cents(self.tick_size),
            mve_collection_ticker=self.mve_collection_ticker,
            is_provisional=self.is_provisional,
            exchange_index=self.exchange_index,
            settlement_bounds_type=self.settlement_bounds_type,
            settlement_floor=dollars(self.settlement_floor_dollars),
            raw=raw,
        )


class SettlementSourceWire(_Wire):
    name: str | None = None
    url: str | None = None

    def to_domain(self) -> SettlementSource:
        return SettlementSource(name=self.name, url=self.url)


class EventWire(_Wire):
    event_ticker: str
    series_ticker: str | None = None
    title: str | None = None
    sub_title: str | None = None
    category: str | None = None
    mutually_exclusive: bool | None = None
    collateral_return_type: str | None = None
    strike_date: AnyTime = None
    strike_period: str | None = None
    last_updated_ts: AnyTime = None
    settlement_sources: list[SettlementSourceWire] | None = None
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None
    exchange_index: int | None = None
    markets: list[dict[str, Any]] | None = None

    def to_domain(self, raw: Mapping[str, Any] | None = None, extra_markets: Sequence[Market] = ()) -> Event:
        nested = tuple(market_from_dict(m) for m in self.markets) if self.markets else tuple(extra_markets)
        return Event(
            event_ticker=self.event_ticker,
            series_ticker=self.series_ticker,
            title=self.title,
            sub_title=self.sub_title,
            category=self.category,
            mutually_exclusive=self.mutually_exclusive,
            collateral_return_type=self.collateral_return_type,
            strike_date=parse_time(self.strike_date),
            strike_period=self.strike_period,
            last_updated_ts=parse_time(self.last_updated_ts),
            settlement_sources=tuple(s.to_domain() for s in self.settlement_sources or ()),
            fee_type_override=self.fee_type_override,
            fee_multiplier_override=self.fee_multiplier_override,
            exchange_index=self.exchange_index,
            markets=nested,
            raw=raw,
        )


class SeriesWire(_Wire):
    ticker: str
    title: str | None = None
    category: str | None = None
    categories: list[str] | None = None
    frequency: str | None = None
    tags: list[str] | None = None
    settlement_sources: list[SettlementSourceWire] | None = None
    contract_url: str | None = None
    contract_terms_url: str | None = None
    fee_type: str | None = None
    fee_multiplier: Decimal | None = None
    additional_prohibitions: list[str] | None = None
    volume_fp: Decimal | None = None
    volume: Decimal | None = None
    last_updated_ts: AnyTime = None
    exchange_index: int | None = None

    def to_domain(self, raw: Mapping[str, Any] | None = None) -> Series:
        return Series(
            ticker=self.ticker,
            title=self.title,
            category=self.category,
            frequency=self.frequency,
            tags=tuple(self.tags or ()),
            settlement_sources=tuple(s.to_domain() for s in self.settlement_sources or ()),
            contract_url=self.contract_url,
            contract_terms_url=self.contract_terms_url,
            fee_type=self.fee_type,
            fee_multiplier=self.fee_multiplier,
            additional_prohibitions=tuple(self.additional_prohibitions or ()),
            volume=count(self.volume_fp, self.volume),
            last_updated_ts=parse_time(self.last_updated_ts),
            exchange_index=self.exchange_index,
            categories=self._categories(),
            raw=raw,
        )

    def _categories(self) -> tuple[str, ...]:
        # payloads older than ``categories`` name one category: the series is listed under that one
        if self.categories:
            return tuple(self.categories)
        return (self.category,) if self.category else ()


class SeriesFeeChangeWire(_Wire):
    id: str
    series_ticker: str
    fee_type: str | None = None
    fee_multiplier: Decimal | None = None
    scheduled_ts: AnyTime = None

    def to_domain(self) -> SeriesFeeChange:
        return SeriesFeeChange(
            id=self.id,
            series_ticker=self.series_ticker,
            fee_type=self.fee_type,
            fee_multiplier=self.fee_multiplier,
            scheduled_ts=parse_time(self.scheduled_ts),
        )


class EventFeeChangeWire(_Wire):
    id: str
    event_ticker: str
    series_ticker: str | None = None
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None
    scheduled_ts: AnyTime = None

    def to_domain(self) -> EventFeeChange:
        return EventFeeChange(
            id=self.id,
            event_ticker=self.event_ticker,
            series_ticker=self.series_ticker,
            fee_type_override=self.fee_type_override,
            fee_multiplier_override=self.fee_multiplier_override,
            scheduled_ts=parse_time(self.scheduled_ts),
        )


class TradeWire(_Wire):
    """A trade from REST (``ticker``, ``created_time``) or WS ``trade`` (``market_ticker``, ``ts``/``ts_ms``)."""

    trade_id: str
    ticker: str | None = None
    market_ticker: str | None = None
    yes_price_dollars: Decimal | None = None
    yes_price: Cents = None
    no_price_dollars: Decimal | None = None
    no_price: Cents = None
    count_fp: Decimal | None = None
    count: Decimal | None = None
    taker_side: str | None = None
    taker_outcome_side: str | None = None
    taker_book_side: str | None = None
    is_block_trade: bool | None = None
    created_time: AnyTime = None
    ts: AnyTime = None
    ts_ms: int | None = None

    def to_domain(self) -> Trade:
        yes = price(self.yes_price_dollars, self.yes_price)
        created = parse_time(self.created_time) if self.created_time is not None else ws_time(self.ts_ms, self.ts)
        return Trade(
            trade_id=self.trade_id,
            ticker=self.ticker or self.market_ticker or "",
            yes_price=yes,
            no_price=_no_price(yes, price(self.no_price_dollars, self.no_price)),
            count=count(self.count_fp, self.count),
            created_time=created,
            taker_side=enum_or_str(Side, self.taker_side),
            taker_outcome_side=enum_or_str(Side, self.taker_outcome_side),
            taker_book_side=enum_or_str(BookSide, self.taker_book_side),
            is_block_trade=self.is_block_trade,
        )


Level = list[Any]


class OrderBookFpWire(_Wire):
    yes_dollars: list[Level] | None = None
    no_dollars: list[Level] | None = None


class OrderBookLegacyWire(_Wire):
    yes: list[Level] | None = None
    no: list[Level] | None = None
    yes_dollars: list[Level] | None = None
    no_dollars: list[Level] | None = None


def _side(dollar_levels: list[Level] | None, cent_levels: list[Level] | None) -> tuple[PriceLevel, ...]:
    if dollar_levels:
        return _levels(dollar_levels, in_cents=False)
    return _levels(cent_levels, in_cents=True)


def _levels(values: list[Level] | None, *, in_cents: bool) -> tuple[PriceLevel, ...]:
    return tuple(PriceLevel(p, c) for p, c in levels_from(values, in_cents=in_cents))


class OrderBookResponseWire(_Wire):
    """``GET /markets/{t}/orderbook`` and each item of ``GET /markets/orderbooks``."""

    ticker: str | None = None
    market_ticker: str | None = None
    orderbook_fp: OrderBookFpWire | None = None
    orderbook: OrderBookLegacyWire | None = None

    def to_domain(self, ticker: str | None = None) -> OrderBook:
        name = self.ticker or self.market_ticker or ticker
        fp, legacy = self.orderbook_fp, self.orderbook
        if fp is not None and (fp.yes_dollars is not None or fp.no_dollars is not None or legacy is None):
            return OrderBook(
                ticker=name,
                yes=_levels(fp.yes_dollars, in_cents=False),
                no=_levels(fp.no_dollars, in_cents=False),
            )
        if legacy is not None:
            return OrderBook(
                ticker=name,
                yes=_side(legacy.yes_dollars, legacy.yes),
                no=_side(legacy.no_dollars, legacy.no),
            )
        return OrderBook(ticker=name)


class BidAskWire(_Wire):
    open_dollars: Decimal | None = None
    open: Cents = None
    high_dollars: Decimal | None = None
    high: Cents = None
    low_dollars: Decimal | None = None
    low: Cents = None
    close_dollars: Decimal | None = None
    close: Cents = None

    def to_bid_ask(self) -> BidAskOhlc:
        return BidAskOhlc(
            open=price(self.open_dollars, self.open),
            high=price(self.high_dollars, self.high),
            low=price(self.low_dollars, self.low),
            close=price(self.close_dollars, self.close),
        )


class PriceWire(BidAskWire):
    mean_dollars: Decimal | None = None
    mean: Cents = None
    previous_dollars: Decimal | None = None
    previous: Cents = None
    min_dollars: Decimal | None = None
    min: Cents = None
    max_dollars: Decimal | None = None
    max: Cents = None

    def to_price(self) -> PriceOhlc:
        return PriceOhlc(
            open=price(self.open_dollars, self.open),
            high=price(self.high_dollars, self.high),
            low=price(self.low_dollars, self.low),
            close=price(self.close_dollars, self.close),
            mean=price(self.mean_dollars, self.mean),
            previous=price(self.previous_dollars, self.previous),
            min=price(self.min_dollars, self.min),
            max=price(self.max_dollars, self.max),
        )


class CandlestickWire(_Wire):
    end_period_ts: AnyTime
    yes_bid: BidAskWire | None = None
    yes_ask: BidAskWire | None = None
    price: PriceWire | None = None
    volume_fp: Decimal | None = None
    volume: Decimal | None = None
    open_interest_fp: Decimal | None = None
    open_interest: Decimal | None = None

    def to_domain(self) -> Candlestick:
        end = parse_time(self.end_period_ts)
        if end is None:
            raise ValueError("candlestick without end_period_ts")
        return Candlestick(
            end_period_ts=end,
            yes_bid=self.yes_bid.to_bid_ask() if self.yes_bid else BidAskOhlc(),
            yes_ask=self.yes_ask.to_bid_ask() if self.yes_ask else BidAskOhlc(),
            price=self.price.to_price() if self.price else PriceOhlc(),
            volume=count(self.volume_fp, self.volume),
            open_interest=count(self.open_interest_fp, self.open_interest),
        )


class ExchangeIndexStatusWire(_Wire):
    exchange_index: int
    description: str | None = None
    exchange_active: bool | None = None
    trading_active: bool | None = None
    intra_exchange_transfers_active: bool | None = None

    def to_domain(self) -> ExchangeIndexStatus:
        return ExchangeIndexStatus(
            exchange_index=self.exchange_index,
            description=self.description,
            exchange_active=self.exchange_active,
            trading_active=self.trading_active,
            intra_exchange_transfers_active=self.intra_exchange_transfers_active,
        )


class ExchangeStatusWire(_Wire):
    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: AnyTime = None
    intra_exchange_transfers_active: bool | None = None
    exchange_index_statuses: list[ExchangeIndexStatusWire] | None = None

    def to_domain(self) -> ExchangeStatus:
        return ExchangeStatus(
            exchange_active=self.exchange_active,
            trading_active=self.trading_active,
            exchange_estimated_resume_time=parse_time(self.exchange_estimated_resume_time),
            intra_exchange_transfers_active=self.intra_exchange_transfers_active,
            exchange_index_statuses=tuple(x.to_domain() for x in self.exchange_index_statuses or ()),
        )


class MarketHistoryPointWire(_Wire):
    ts: AnyTime
    yes_bid: Cents = None
    yes_bid_dollars: Decimal | None = None
    yes_ask: Cents = None
    yes_ask_dollars: Decimal | None = None
    no_bid: Cents = None
    no_bid_dollars: Decimal | None = None
    no_ask: Cents = None
    no_ask_dollars: Decimal | None = None
    yes_price: Cents = None
    yes_price_dollars: Decimal | None = None
    volume: Decimal | None = None
    volume_fp: Decimal | None = None
    open_interest: Decimal | None = None
    open_interest_fp: Decimal | None = None

    def to_domain(self) -> MarketHistoryPoint:
        ts = parse_time(self.ts)
        if ts is None:
            raise ValueError("history point without ts")
        return MarketHistoryPoint(
            ts=ts,
            yes_bid=price(self.yes_bid_dollars, self.yes_bid),
            yes_ask=price(self.yes_ask_dollars, self.yes_ask),
            no_bid=price(self.no_bid_dollars, self.no_bid),
            no_ask=price(self.no_ask_dollars, self.no_ask),
            yes_price=price(self.yes_price_dollars, self.yes_price),
            volume=count(self.volume_fp, self.volume),
            open_interest=count(self.open_interest_fp, self.open_interest),
        )


# ----------------------------------------------------------------------------------------------- REST entry points
def _summary(exc: ValidationError) -> str:
    errs = exc.errors(include_url=False)
    first = errs[0] if errs else {"loc": (), "msg": str(exc)}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{loc}: {first.get('msg')}{more}" if loc else f"{first.get('msg')}{more}"


def decode_json(body: str | bytes) -> Any:
    """JSON text → Python object, or :class:`KalshiProtocolError` (truncated/invalid JSON) keeping the text."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KalshiProtocolError(f"malformed JSON ({exc})", body, kind=KalshiProtocolError.MALFORMED_JSON) from None


def _validated(model: type[W], data: Any, raw: Any) -> W:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise KalshiProtocolError(f"invalid {model.__name__}: {_summary(exc)}", _text(raw)) from None


def _text(raw: Any) -> str:
    if isinstance(raw, str | bytes):
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return json.dumps(raw, default=str)
    except (TypeError, ValueError):
        return repr(raw)


def _obj(data: Any, key: str, raw: Any) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise KalshiProtocolError(f"response has no {key!r}", _text(raw))
    return data[key]


def _list(data: Any, key: str, raw: Any, *, required: bool = True) -> list[Any]:
    if not isinstance(data, dict):
        raise KalshiProtocolError("response is not a JSON object", _text(raw))
    value = data.get(key)
    if value is None:
        if required and key not in data:
            raise KalshiProtocolError(f"response has no {key!r}", _text(raw))
        return []
    if not isinstance(value, list):
        raise KalshiProtocolError(f"{key!r} is not a list", _text(raw))
    return value


def _cursor(data: Any) -> str | None:
    cursor = data.get("cursor") if isinstance(data, dict) else None
    return str(cursor) if cursor else None


def _guard(fn: Callable[[], R], raw: Any) -> R:
    """Run a domain conversion, turning a bad value (ValueError) into a protocol error."""
    try:
        return fn()
    except KalshiProtocolError:
        raise
    except (ValueError, ArithmeticError) as exc:
        raise KalshiProtocolError(f"bad value ({exc})", _text(raw)) from None


def market_from_dict(data: Mapping[str, Any]) -> Market:
    """One market object (already JSON-decoded) → :class:`Market` (``raw`` keeps the object)."""
    wire = _validated(MarketWire, data, data)
    return _guard(lambda: wire.to_domain(raw=data), data)


def event_from_dict(data: Mapping[str, Any], extra_markets: Sequence[Market] = ()) -> Event:
    wire = _validated(EventWire, data, data)
    return _guard(lambda: wire.to_domain(raw=data, extra_markets=extra_markets), data)


def series_from_dict(data: Mapping[str, Any]) -> Series:
    wire = _validated(SeriesWire, data, data)
    return _guard(lambda: wire.to_domain(raw=data), data)


def trade_from_dict(data: Mapping[str, Any]) -> Trade:
    wire = _validated(TradeWire, data, data)
    return _guard(wire.to_domain, data)


def orderbook_from_dict(data: Mapping[str, Any], ticker: str | None = None) -> OrderBook:
    """An orderbook response object (``{"orderbook_fp": …}`` or legacy ``{"orderbook": …}``) → :class:`OrderBook`."""
    wire = _validated(OrderBookResponseWire, data, data)
    return _guard(lambda: wire.to_domain(ticker), data)


def candlestick_from_dict(data: Mapping[str, Any]) -> Candlestick:
    wire = _validated(CandlestickWire, data, data)
    return _guard(wire.to_domain, data)


def history_point_from_dict(data: Mapping[str, Any]) -> MarketHistoryPoint:
    wire = _validated(MarketHistoryPointWire, data, data)
    return _guard(wire.to_domain, data)


def exchange_status_from_dict(data: Mapping[str, Any]) -> ExchangeStatus:
    wire = _validated(ExchangeStatusWire, data, data)
    return _guard(wire.to_domain, data)


def parse_markets_page(body: str | bytes) -> Page[Market]:
    """``GET /markets`` body → page of markets."""
    data = decode_json(body)
    return Page(tuple(market_from_dict(m) for m in _list(data, "markets", body)), _cursor(data))


def parse_market(body: str | bytes) -> Market:
    data = decode_json(body)
    return market_from_dict(_obj(data, "market", body))


def parse_trades_page(body: str | bytes) -> Page[Trade]:
    data = decode_json(body)
    return Page(tuple(trade_from_dict(t) for t in _list(data, "trades", body)), _cursor(data))


def parse_events_page(body: str | bytes) -> Page[Event]:
    data = decode_json(body)
    return Page(tuple(event_from_dict(e) for e in _list(data, "events", body)), _cursor(data))


def parse_event(body: str | bytes) -> Event:
    """``GET /events/{e}``: the event, with markets from ``event.markets`` or the top-level ``markets``."""
    data = decode_json(body)
    top = tuple(market_from_dict(m) for m in _list(data, "markets", body, required=False))
    return event_from_dict(_obj(data, "event", body), extra_markets=top)


def parse_series(body: str | bytes) -> Series:
    data = decode_json(body)
    return series_from_dict(_obj(data, "series", body))


def parse_series_fee_changes(body: str | bytes) -> list[SeriesFeeChange]:
    """``GET /series/fee_changes`` (no cursor in the spec)."""
    data = decode_json(body)
    return [
        _guard(_validated(SeriesFeeChangeWire, c, c).to_domain, c) for c in _list(data, "series_fee_change_arr", body)
    ]


def parse_event_fee_changes(body: str | bytes) -> Page[EventFeeChange]:
    data = decode_json(body)
    items = tuple(
        _guard(_validated(EventFeeChangeWire, c, c).to_domain, c) for c in _list(data, "event_fee_changes", body)
    )
    return Page(items, _cursor(data))


def parse_multivariate_events(body: str | bytes) -> Page[Event]:
    """``GET /events/multivariate``: combo events, in the ``GET /events`` shape."""
    return parse_events_page(body)


def parse_series_list(body: str | bytes) -> Page[Series]:
    data = decode_json(body)
    return Page(tuple(series_from_dict(s) for s in _list(data, "series", body)), _cursor(data))


def parse_orderbook(body: str | bytes, ticker: str | None = None) -> OrderBook:
    data = decode_json(body)
    if not isinstance(data, dict):
        raise KalshiProtocolError("response is not a JSON object", body)
    return orderbook_from_dict(data, ticker)


def parse_orderbooks(body: str | bytes) -> list[OrderBook]:
    """``GET /markets/orderbooks`` → one book per ticker."""
    data = decode_json(body)
    return [orderbook_from_dict(o) for o in _list(data, "orderbooks", body)]


def parse_candlesticks(body: str | bytes) -> list[Candlestick]:
    data = decode_json(body)
    return [candlestick_from_dict(c) for c in _list(data, "candlesticks", body)]


def parse_batch_candlesticks(body: str | bytes) -> dict[str, list[Candlestick]]:
    """``GET /markets/candlesticks`` → ``{ticker: [candles]}``."""
    data = decode_json(body)
    out: dict[str, list[Candlestick]] = {}
    for item in _list(data, "markets", body):
        if not isinstance(item, dict) or not isinstance(item.get("market_ticker"), str):
            raise KalshiProtocolError("batch candlestick item without market_ticker", _text(item))
        out[item["market_ticker"]] = [candlestick_from_dict(c) for c in item.get("candlesticks") or ()]
    return out


def parse_exchange_status(body: str | bytes) -> ExchangeStatus:
    data = decode_json(body)
    if not isinstance(data, dict):
        raise KalshiProtocolError("response is not a JSON object", body)
    return exchange_status_from_dict(data)


def api_error_from_body(
    status: int, body: str | bytes, *, method: str | None = None, path: str | None = None
) -> KalshiApiError:
    """Any of Kalshi's error bodies → :class:`KalshiApiError`; a non-JSON body is kept as the message.

    Shapes: ``{"code", "message", "details"}``; ``{"error": {"code", "message", "details"}}``;
    ``{"error": "too many requests"}``.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    code = message = details = None
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        inner = data.get("error")
        src: Any = inner if isinstance(inner, dict) else data
        if isinstance(inner, str):
            message = inner
        else:
            code = _opt_str(src.get("code"))
            message = _opt_str(src.get("message") if "message" in src else src.get("msg"))
            details = _opt_str(src.get("details"))
    elif text.strip():
        message = text.strip()[:500]
    return KalshiApiError(status, code, message, details, body=text, method=method, path=path)


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


# ================================================================================================= WebSocket wire
class TickerMsg(_Wire):
    market_ticker: str
    market_id: str | None = None
    price_dollars: Decimal | None = None
    price: Cents = None
    yes_bid_dollars: Decimal | None = None
    yes_bid: Cents = None
    yes_ask_dollars: Decimal | None = None
    yes_ask: Cents = None
    volume_fp: Decimal | None = None
    volume: Decimal | None = None
    open_interest_fp: Decimal | None = None
    open_interest: Decimal | None = None
    dollar_volume: Decimal | None = None
    dollar_open_interest: Decimal | None = None
    yes_bid_size_fp: Decimal | None = None
    yes_ask_size_fp: Decimal | None = None
    last_trade_size_fp: Decimal | None = None
    ts: AnyTime = None
    ts_ms: int | None = None
    time: str | None = None


class _Frame(_Wire):
    id: int | None = None
    sid: int | None = None
    seq: int | None = None


class TickerFrame(_Frame):
    type: Literal["ticker"]
    msg: TickerMsg
    sending_ts_ms: int | None = None

    def to_domain(self, received_at: datetime | None) -> TickerUpdate:
        m = self.msg
        return TickerUpdate(
            sid=self.sid,
            seq=self.seq,
            market_ticker=m.market_ticker,
            market_id=m.market_id,
            price=traded_price(m.price_dollars, m.price),
            yes_bid=price(m.yes_bid_dollars, m.yes_bid),
            yes_ask=price(m.yes_ask_dollars, m.yes_ask),
            volume=count(m.volume_fp, m.volume),
            open_interest=count(m.open_interest_fp, m.open_interest),
            yes_bid_size=m.yes_bid_size_fp,
            yes_ask_size=m.yes_ask_size_fp,
            last_trade_size=m.last_trade_size_fp,
            dollar_volume=m.dollar_volume,
            dollar_open_interest=m.dollar_open_interest,
            ts=ws_time(m.ts_ms, m.ts if m.ts is not None else m.time),
            sent_at=from_ms(self.sending_ts_ms) if self.sending_ts_ms is not None else None,
            received_at=received_at,
        )


class TradeFrame(_Frame):
    type: Literal["trade"]
    msg: TradeWire

    def to_domain(self, received_at: datetime | None) -> TradeUpdate:
        return TradeUpdate(sid=self.sid, seq=self.seq, trade=self.msg.to_domain(), received_at=received_at)


class SnapshotMsg(_Wire):
    market_ticker: str
    market_id: str | None = None
    yes_dollars_fp: list[Level] | None = None
    no_dollars_fp: list[Level] | None = None
    yes_dollars: list[Level] | None = None
    no_dollars: list[Level] | None = None
    yes: list[Level] | None = None
    no: list[Level] | None = None


class SnapshotFrame(_Frame):
    type: Literal["orderbook_snapshot"]
    msg: SnapshotMsg

    def to_domain(self, received_at: datetime | None) -> OrderbookSnapshot:
        m = self.msg
        current = m.yes_dollars_fp is not None or m.no_dollars_fp is not None
        if current:
            yes = _levels(m.yes_dollars_fp, in_cents=False)
            no = _levels(m.no_dollars_fp, in_cents=False)
        else:
            yes = _side(m.yes_dollars, m.yes)
            no = _side(m.no_dollars, m.no)
        return OrderbookSnapshot(
            sid=self.sid,
            seq=self.seq,
            market_id=m.market_id,
            book=OrderBook(ticker=m.market_ticker, yes=yes, no=no),
            received_at=received_at,
        )


class DeltaMsg(_Wire):
    market_ticker: str
    market_id: str | None = None
    price_dollars: Decimal | None = None
    price: Cents = None
    delta_fp: Decimal | None = None
    delta: Decimal | None = None
    side: str
    ts: AnyTime = None
    ts_ms: int | None = None
    client_order_id: str | None = None


class DeltaFrame(_Frame):
    type: Literal["orderbook_delta"]
    msg: DeltaMsg

    def to_domain(self, received_at: datetime | None) -> OrderbookDelta:
        m = self.msg
        p = price(m.price_dollars, m.price)
        d = count(m.delta_fp, m.delta)
        if p is None or d is None:
            raise ValueError("orderbook_delta without price or delta")
        return OrderbookDelta(
            sid=self.sid,
            seq=self.seq,
            market_ticker=m.market_ticker,
            market_id=m.market_id,
            side=enum_or_str(Side, m.side) or m.side,
            price=p,
            delta=d,
            ts=ws_time(m.ts_ms, m.ts),
            client_order_id=m.client_order_id,
            received_at=received_at,
        )


class LifecycleMsg(_Wire):
    event_type: str
    market_ticker: str
    open_ts: AnyTime = None
    close_ts: AnyTime = None
    determination_ts: AnyTime = None
    settled_ts: AnyTime = None
    result: str | None = None
    settlement_value: Cents = None
    settlement_value_dollars: Decimal | None = None
    is_deactivated: bool | None = None
    price_level_structure: str | None = None
    price_ranges: list[PriceRangeWire] | None = None
    exchange_index: int | None = None
    additional_metadata: dict[str, Any] | None = None


class LifecycleFrame(_Frame):
    type: Literal["market_lifecycle_v2"]
    msg: LifecycleMsg

    def to_domain(self, received_at: datetime | None) -> MarketLifecycle:
        m = self.msg
        return MarketLifecycle(
            sid=self.sid,
            seq=self.seq,
            event_type=enum_or_str(LifecycleEvent, m.event_type) or m.event_type,
            market_ticker=m.market_ticker,
            open_ts=parse_time(m.open_ts),
            close_ts=parse_time(m.close_ts),
            determination_ts=parse_time(m.determination_ts),
            settled_ts=parse_time(m.settled_ts),
            result=enum_or_str(MarketResult, m.result),
            settlement_value=price(m.settlement_value_dollars, m.settlement_value),
            is_deactivated=m.is_deactivated,
            price_level_structure=m.price_level_structure,
            price_ranges=_ranges(m.price_ranges),
            exchange_index=m.exchange_index,
            additional_metadata=m.additional_metadata,
            received_at=received_at,
        )


class EventLifecycleMsg(_Wire):
    event_ticker: str
    series_ticker: str | None = None
    title: str | None = None
    subtitle: str | None = None
    collateral_return_type: str | None = None
    strike_date: AnyTime = None
    strike_period: str | None = None
    exchange_index: int | None = None


class EventLifecycleFrame(_Frame):
    type: Literal["event_lifecycle"]
    msg: EventLifecycleMsg

    def to_domain(self, received_at: datetime | None) -> EventLifecycle:
        m = self.msg
        return EventLifecycle(
            sid=self.sid,
            seq=self.seq,
            event_ticker=m.event_ticker,
            series_ticker=m.series_ticker,
            title=m.title,
            subtitle=m.subtitle,
            collateral_return_type=m.collateral_return_type,
            strike_date=parse_time(m.strike_date),
            strike_period=m.strike_period,
            exchange_index=m.exchange_index,
            received_at=received_at,
        )


class EventFeeMsg(_Wire):
    event_ticker: str
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None


class EventFeeFrame(_Frame):
    type: Literal["event_fee_update"]
    msg: EventFeeMsg

    def to_domain(self, received_at: datetime | None) -> EventFeeUpdate:
        m = self.msg
        return EventFeeUpdate(
            sid=self.sid,
            seq=self.seq,
            event_ticker=m.event_ticker,
            fee_type_override=m.fee_type_override,
            fee_multiplier_override=m.fee_multiplier_override,
            received_at=received_at,
        )


class SubscribedMsg(_Wire):
    channel: str
    sid: int


class SubscribedFrame(_Frame):
    type: Literal["subscribed"]
    msg: SubscribedMsg

    def to_domain(self, received_at: datetime | None) -> Subscribed:
        return Subscribed(id=self.id, sid=self.msg.sid, channel=self.msg.channel)


class OkMsg(_Wire):
    market_tickers: list[str] | None = None
    sid: int | None = None


class OkFrame(_Frame):
    type: Literal["ok"]
    msg: OkMsg | list[SubscribedMsg] | None = None

    def to_domain(self, received_at: datetime | None) -> CommandOk:
        if isinstance(self.msg, list):
            subs = tuple(SubscriptionInfo(channel=s.channel, sid=s.sid) for s in self.msg)
            return CommandOk(id=self.id, sid=self.sid, seq=self.seq, subscriptions=subs)
        tickers = tuple(self.msg.market_tickers) if self.msg and self.msg.market_tickers is not None else None
        sid = self.sid if self.sid is not None else (self.msg.sid if self.msg else None)
        return CommandOk(id=self.id, sid=sid, seq=self.seq, market_tickers=tickers)


class UnsubscribedFrame(_Frame):
    type: Literal["unsubscribed"]

    def to_domain(self, received_at: datetime | None) -> Unsubscribed:
        return Unsubscribed(id=self.id, sid=self.sid, seq=self.seq)


class ErrorMsg(_Wire):
    code: int | None = None
    msg: str = ""
    market_ticker: str | None = None
    sid: int | None = None


class ErrorFrame(_Frame):
    type: Literal["error"]
    msg: ErrorMsg = Field(default_factory=ErrorMsg)

    def to_domain(self, received_at: datetime | None) -> CommandError:
        m = self.msg
        return CommandError(
            id=self.id,
            code=m.code,
            message=m.msg,
            sid=self.sid if self.sid is not None else m.sid,
            market_ticker=m.market_ticker,
        )


WsFrame = Annotated[
    TickerFrame
    | TradeFrame
    | DeltaFrame
    | SnapshotFrame
    | LifecycleFrame
    | EventLifecycleFrame
    | EventFeeFrame
    | SubscribedFrame
    | OkFrame
    | UnsubscribedFrame
    | ErrorFrame,
    Field(discriminator="type"),
]
_WS_ADAPTER: TypeAdapter[WsFrame] = TypeAdapter(WsFrame)

#: The ``type`` values :func:`parse_ws_message` understands.
WS_MESSAGE_TYPES = frozenset(
    {
        "ticker",
        "trade",
        "orderbook_delta",
        "orderbook_snapshot",
        "market_lifecycle_v2",
        "event_lifecycle",
        "event_fee_update",
        "subscribed",
        "ok",
        "unsubscribed",
        "error",
    }
)


def parse_ws_message(raw: str | bytes, received_at: datetime | None = None) -> WsMessage:
    """One WebSocket text frame → its domain message.

    Raises :class:`KalshiProtocolError` (``kind`` = ``malformed_json`` / ``unknown_type`` / ``invalid``, ``raw``
    kept) for anything that is not a well-formed frame of a known type.
    """
    hot = parse_hot_frame(raw, received_at)
    if hot is not None:
        return hot
    try:
        frame = _WS_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _ws_error(exc, raw) from None
    try:
        return frame.to_domain(received_at)
    except (ValueError, ArithmeticError) as exc:
        raise KalshiProtocolError(f"bad value in {frame.type} frame ({exc})", raw) from None


def _ws_error(exc: ValidationError, raw: str | bytes) -> KalshiProtocolError:
    errs = exc.errors(include_url=False)
    kinds = {e["type"] for e in errs}
    if "json_invalid" in kinds or "json_type" in kinds:
        return KalshiProtocolError("malformed JSON", raw, kind=KalshiProtocolError.MALFORMED_JSON)
    if "union_tag_invalid" in kinds:
        tag = next((e.get("ctx", {}).get("tag") for e in errs if e["type"] == "union_tag_invalid"), None)
        return KalshiProtocolError(f"unknown message type {tag!r}", raw, kind=KalshiProtocolError.UNKNOWN_TYPE)
    if "union_tag_not_found" in kinds or "model_attributes_type" in kinds:
        return KalshiProtocolError("frame has no 'type'", raw, kind=KalshiProtocolError.UNKNOWN_TYPE)
    return KalshiProtocolError(f"invalid frame: {_summary(exc)}", raw)
