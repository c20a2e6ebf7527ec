"""Range checks of the exchange's data messages, after conversion to domain values (DESIGN.md §5, "Validation at
the edge").

A frame can be well-formed JSON of a known type and still be nonsense: a price of 1.5, a negative count, a 1970
timestamp, a bid above the ask. Stored, such values poison every reader (a candle's implied probability of 2.0),
so the WebSocket dispatcher rejects them here, with a :class:`Reason` that becomes a metric label.

The limits are the exchange's own: prices are dollars in [0, 1] on a tick no finer than 0.0001 (what
``NUMERIC(10,4)`` stores exactly; finer digits would be rounded away silently), counts are finite and not negative,
and times fall between Kalshi's beginnings and a day past our clock (exchange clocks drift by seconds, not days).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from kalshi_analytics.kalshi.domain import (
    EventFeeUpdate,
    EventLifecycle,
    Levels,
    Market,
    MarketLifecycle,
    OrderbookDelta,
    OrderbookSnapshot,
    TickerUpdate,
    Trade,
    TradeUpdate,
    WsData,
)

TICK = Decimal("0.0001")
ZERO = Decimal(0)
ONE = Decimal(1)
# Kalshi's busiest markets trade ~10^9 contracts; 10^12 leaves room and still catches 1e300.
MAX_COUNT = Decimal(10) ** 12
_TICKS = frozenset(Decimal(i).scaleb(-4) for i in range(10_001))  # every valid price, 0 to 1 by TICK
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)


class Reason(StrEnum):
    """Why a frame was rejected: the label of the recorder's rejection metric and of each kept frame."""

    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID = "invalid"
    PRICE_OUT_OF_RANGE = "price_out_of_range"
    PRICE_PRECISION = "price_precision"
    COUNT_OUT_OF_RANGE = "count_out_of_range"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    EMPTY_TICKER = "empty_ticker"
    CROSSED_BOOK = "crossed_book"
    TRADE_INCOMPLETE = "trade_incomplete"
    UNKNOWN_TICKER = "unknown_ticker"
    OVERSIZED = "oversized"


class _Rejected(Exception):
    """Raised by the checks below so that each stays a flat list of conditions; :func:`problem` catches it."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def problem(msg: WsData, now: datetime | None = None) -> tuple[Reason, str] | None:
    """``(reason, detail)`` when a data message holds a value the exchange cannot mean; ``None`` when it is sane.

    ``now`` is our receipt time (the reference of "in the future").
    """
    check = _CHECKS.get(type(msg))
    if check is None:
        return None
    try:
        check(msg, now or datetime.now(UTC))
    except _Rejected as r:
        return r.reason, r.detail
    return None


def market_problem(m: Market, now: datetime | None = None) -> tuple[Reason, str] | None:
    """The same verdict for a REST market (its prices, counts, and the update time a snapshot is stamped with)."""
    try:
        _market(m, now or datetime.now(UTC))
    except _Rejected as r:
        return r.reason, r.detail
    return None


def trade_problem(t: Trade, now: datetime | None = None) -> tuple[Reason, str] | None:
    """The same verdict for a REST trade."""
    try:
        _trade(t, now or datetime.now(UTC))
    except _Rejected as r:
        return r.reason, r.detail
    return None


def _market(m: Market, now: datetime) -> None:
    _ticker(m.ticker)
    for name in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "settlement_value"):
        _price(name, getattr(m, name))
    for name in ("volume", "volume_24h", "open_interest", "yes_bid_size", "yes_ask_size"):
        _count(name, getattr(m, name))
    # Only the update time: other times may legitimately lie years ahead (close) or be unset placeholders.
    _time("updated_time", m.updated_time, now)
    if m.yes_bid is not None and m.yes_ask is not None and m.yes_bid > m.yes_ask:
        raise _Rejected(Reason.CROSSED_BOOK, f"yes_bid {m.yes_bid} above yes_ask {m.yes_ask}")


def _ticker_update(msg: TickerUpdate, now: datetime) -> None:
    _ticker(msg.market_ticker)
    for name in ("price", "yes_bid", "yes_ask"):
        _price(name, getattr(msg, name))
    for name in ("volume", "open_interest", "yes_bid_size", "yes_ask_size", "last_trade_size"):
        _count(name, getattr(msg, name))
    for name in ("dollar_volume", "dollar_open_interest"):
        _amount(name, getattr(msg, name))
    _time("ts", msg.ts, now)
    if msg.yes_bid is not None and msg.yes_ask is not None and msg.yes_bid > msg.yes_ask:
        raise _Rejected(Reason.CROSSED_BOOK, f"yes_bid {msg.yes_bid} above yes_ask {msg.yes_ask}")


def _trade_update(msg: TradeUpdate, now: datetime) -> None:
    _trade(msg.trade, now)


def _delta(msg: OrderbookDelta, now: datetime) -> None:
    _ticker(msg.market_ticker)
    _price("price", msg.price)
    _count("delta", abs(msg.delta))  # signed by design: only its size is bounded
    _time("ts", msg.ts, now)


def _snapshot(msg: OrderbookSnapshot, now: datetime) -> None:
    _ticker(msg.market_ticker)
    _levels("yes", msg.book.yes)
    _levels("no", msg.book.no)
    bid, no_bid = msg.book.best_yes_bid, msg.book.best_no_bid
    if bid is not None and no_bid is not None and bid + no_bid > ONE:
        raise _Rejected(Reason.CROSSED_BOOK, f"best yes bid {bid} above best yes ask {ONE - no_bid}")


def _lifecycle(msg: MarketLifecycle, now: datetime) -> None:
    _ticker(msg.market_ticker)
    _price("settlement_value", msg.settlement_value)
    for name in ("open_ts", "close_ts"):
        _time(name, getattr(msg, name), None)  # a close can be years ahead
    for name in ("determination_ts", "settled_ts"):
        _time(name, getattr(msg, name), now)


def _event(msg: EventLifecycle | EventFeeUpdate, now: datetime) -> None:
    _ticker(msg.event_ticker)


_CHECKS: dict[type[Any], Callable[[Any, datetime], None]] = {
    TickerUpdate: _ticker_update,
    TradeUpdate: _trade_update,
    OrderbookDelta: _delta,
    OrderbookSnapshot: _snapshot,
    MarketLifecycle: _lifecycle,
    EventLifecycle: _event,
    EventFeeUpdate: _event,
}


def _trade(t: Trade, now: datetime) -> None:
    _ticker(t.ticker)
    if t.yes_price is None or t.count is None:
        raise _Rejected(Reason.TRADE_INCOMPLETE, f"trade {t.trade_id!r} without price or count")
    _price("yes_price", t.yes_price)
    _price("no_price", t.no_price)
    _count("count", t.count)
    if t.count == ZERO:
        raise _Rejected(Reason.COUNT_OUT_OF_RANGE, f"trade {t.trade_id!r} of 0 contracts")
    _time("created_time", t.created_time, now)


def _ticker(value: str | None) -> None:
    if not value or not value.strip():
        raise _Rejected(Reason.EMPTY_TICKER, "empty ticker")


def _price(name: str, p: Decimal | None) -> None:
    if p is None:
        return
    try:
        if p in _TICKS:  # the common case, a sixth of the checks below (several prices a frame)
            return
    except TypeError:  # a signalling NaN cannot be hashed; the checks below word it
        pass
    if not p.is_finite() or not ZERO <= p <= ONE:
        raise _Rejected(Reason.PRICE_OUT_OF_RANGE, f"{name} {p} outside [0, 1]")
    if p != p.quantize(TICK):
        raise _Rejected(Reason.PRICE_PRECISION, f"{name} {p} finer than the {TICK} tick")


def _count(name: str, c: Decimal | None) -> None:
    if c is None:
        return
    if not c.is_finite() or c < ZERO or c > MAX_COUNT:
        raise _Rejected(Reason.COUNT_OUT_OF_RANGE, f"{name} {c} not a count of contracts")


def _amount(name: str, a: Decimal | None) -> None:
    if a is not None and (not a.is_finite() or a < ZERO):
        raise _Rejected(Reason.COUNT_OUT_OF_RANGE, f"{name} {a} not a dollar total")


def _levels(side: str, levels: Levels) -> None:
    for level in levels:
        _price(f"{side} level price", level.price)
        _count(f"{side} level size", level.size)


def _time(name: str, t: datetime | None, now: datetime | None) -> None:
    if t is None:
        return
    if t < EARLIEST or (now is not None and t > now + MAX_AHEAD):
        raise _Rejected(Reason.TIME_OUT_OF_RANGE, f"{name} {t.isoformat()} before 2015 or over a day ahead")


def market_of(msg: WsData) -> str | None:
    """The market a ``ticker``/``trade``/``orderbook_*`` message is about (``None`` for other channels)."""
    t = type(msg)  # exact types, not isinstance of a union: this runs for every frame
    if t is OrderbookDelta or t is TickerUpdate or t is OrderbookSnapshot:
        return msg.market_ticker  # type: ignore[union-attr]
    if t is TradeUpdate:
        return msg.trade.ticker  # type: ignore[union-attr]
    return None


def reasons() -> Iterable[str]:
    """Every reason label, so a metric can show each at 0 before its first rejection."""
    return (r.value for r in Reason)
