"""Response models of the markets API (pydantic v2).

Prices and counts are exact decimals serialised as JSON **strings** (``"0.4350"``): dollars 0–1, which read
directly as probabilities; strings because a JSON number would be parsed as a binary float by most clients.
Times are ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Price = Decimal
ProbabilitySourceField = Literal["mid", "last"] | None


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MarketSummary(_Model):
    """A row of the markets list, with the latest recorded quote."""

    ticker: str
    title: str | None
    event_ticker: str
    series_ticker: str | None
    category: str | None
    status: str
    close_time: datetime | None
    volume: Decimal | None
    open_interest: Decimal | None
    yes_price: Price | None = Field(description="best YES bid (the seed's yes_price)")
    no_price: Price | None = Field(description="best NO bid (the seed's no_price)")
    yes_bid: Price | None
    yes_ask: Price | None
    last_price: Price | None
    implied_probability: Price | None
    implied_probability_source: ProbabilitySourceField
    change_24h: Decimal | None = Field(
        None,
        description="implied probability now minus 24 h ago (the latest snapshot at or before then; for a market "
        "recorded for less than a day, its first snapshot); null when either is unknown",
    )
    last_updated: datetime | None = Field(description="exchange time of the latest snapshot")


class MarketPage(_Model):
    items: list[MarketSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class MarketResponse(_Model):
    """One market: catalogue fields, latest quote, implied probability and settlement when known."""

    ticker: str
    title: str | None
    subtitle: str | None
    event_ticker: str
    series_ticker: str | None
    category: str | None
    status: str
    open_time: datetime | None
    close_time: datetime | None
    yes_price: Price | None = Field(description="best YES bid (the seed's yes_price)")
    no_price: Price | None = Field(description="best NO bid (the seed's no_price)")
    yes_bid: Price | None
    yes_ask: Price | None
    no_bid: Price | None
    no_ask: Price | None
    last_price: Price | None
    implied_probability: Price | None = Field(
        description="mid of YES bid/ask when both exist and the spread is ≤ API_MAX_SPREAD, else the last price"
    )
    implied_probability_source: ProbabilitySourceField
    volume: Decimal | None
    open_interest: Decimal | None
    result: str | None = Field(description="yes | no | … once determined")
    settlement_value: Price | None
    settled_at: datetime | None
    last_updated: datetime = Field(description="latest snapshot's exchange time, else the catalogue update time")
    rules_primary: str | None = Field(None, description="the exchange's resolution rules (as it last listed them)")
    rules_secondary: str | None = Field(None, description="the exchange's further resolution details, if any")


class Snapshot(_Model):
    """One recorded state of a market (``market_snapshots``)."""

    ticker: str
    ts: datetime = Field(description="exchange time")
    received_at: datetime
    source: str
    sequence: int | None
    yes_bid: Price | None
    yes_ask: Price | None
    no_bid: Price | None
    no_ask: Price | None
    last_price: Price | None
    yes_bid_size: Decimal | None
    yes_ask_size: Decimal | None
    volume: Decimal | None
    open_interest: Decimal | None
    status: str | None
    implied_probability: Price | None
    implied_probability_source: ProbabilitySourceField


_DATA_START = "only in an empty answer: the market's first recorded time (null: nothing recorded)"
_DATA_END = "only in an empty answer: the market's last recorded time"


class SnapshotPage(_Model):
    ticker: str
    items: list[Snapshot]
    next_cursor: str | None
    data_start: datetime | None = Field(None, description=_DATA_START)
    data_end: datetime | None = Field(None, description=_DATA_END)


class Candle(_Model):
    """OHLC of implied probability (``prob_*``) and of the last trade price (``price_*``) over one bucket."""

    start: datetime
    first_ts: datetime
    last_ts: datetime
    prob_open: Price | None
    prob_high: Price | None
    prob_low: Price | None
    prob_close: Price | None
    price_open: Price | None
    price_high: Price | None
    price_low: Price | None
    price_close: Price | None
    yes_bid_close: Price | None
    yes_ask_close: Price | None
    volume: Decimal | None = Field(description="cumulative volume at the bucket's close")
    open_interest: Decimal | None
    snapshots: int


class CandleHistory(_Model):
    ticker: str
    interval: str
    start: datetime
    end: datetime
    next_cursor: str | None = Field(
        description="a window of more than 10,000 candles comes a page at a time: pass as `cursor` for the next"
    )
    candles: list[Candle]
    data_start: datetime | None = Field(None, description=_DATA_START)
    data_end: datetime | None = Field(None, description=_DATA_END)


class BookLevel(_Model):
    price: Price
    size: Decimal


#: ``[price, size]``, as the seed's frontend reads a book level.
LevelPair = tuple[Price, Decimal]


class OrderBook(_Model):
    """A recorded full book; levels best first. Kalshi books hold bids only: a YES ask is 1 − a NO bid."""

    ticker: str
    ts: datetime
    received_at: datetime
    source: str
    sequence: int | None
    yes: list[BookLevel]
    no: list[BookLevel]
    best_yes_bid: Price | None
    best_yes_ask: Price | None = Field(description="1 − best NO bid")
    yes_bids: list[LevelPair] = Field(description="`[price, size]` of the YES bids, best (highest) first")
    yes_asks: list[LevelPair] = Field(
        description="`[price, size]` of the YES asks, best (lowest) first: 1 − each NO bid, at that bid's size"
    )


class Trade(_Model):
    trade_id: str
    ticker: str
    ts: datetime
    yes_price: Price
    no_price: Price
    count: Decimal
    taker_side: str | None
    is_block_trade: bool | None


class TradePage(_Model):
    ticker: str
    items: list[Trade]
    next_cursor: str | None


class MarketGap(_Model):
    """A recorder feed gap (``feed_gaps``) that touches a market: about its ticker, or (``ticker`` null) about a
    whole subscription or connection, which every market shares."""

    key: str = Field(description="the gap's identity, as in the stream's `gap_opened` / `gap_repaired` events")
    ticker: str | None = Field(description="null: a whole subscription or connection")
    channel: str
    cause: str
    detected_at: datetime
    gap_start: datetime
    gap_end: datetime | None = Field(description="null while the gap is still open")
    repaired_at: datetime | None
    repair_method: str | None
    unrepairable_reason: str | None = Field(description="set instead of `repaired_at` when the hole stays a hole")


class MarketGapPage(_Model):
    ticker: str
    start: datetime
    end: datetime
    items: list[MarketGap] = Field(description="gaps overlapping [start, end), oldest gap_start first")
    next_cursor: str | None
