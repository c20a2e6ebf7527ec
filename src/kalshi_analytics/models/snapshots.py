"""The time series: market snapshots (partitioned by month), order books and 1-minute candles."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Integer, LargeBinary, PrimaryKeyConstraint, SmallInteger
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import COUNT, PRICE, Base

SNAPSHOT_SOURCES = ("poll", "websocket", "backfill")
_SOURCE_CHECK = "source IN ('poll', 'websocket', 'backfill')"


class MarketSnapshot(Base):
    """One observed state of a market. Range-partitioned by month on ``ts`` (see the initial migration)."""

    __tablename__ = "market_snapshots"
    __table_args__ = (
        # The natural key; its index also serves (ticker, ts) range reads, so there is no second index.
        PrimaryKeyConstraint("ticker", "ts", "source"),
        CheckConstraint(_SOURCE_CHECK, name="source"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )

    ticker: Mapped[str]
    ts: Mapped[datetime]  # exchange time
    source: Mapped[str]
    received_at: Mapped[datetime]  # our receipt time
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    yes_bid: Mapped[Decimal | None] = mapped_column(PRICE)
    yes_ask: Mapped[Decimal | None] = mapped_column(PRICE)
    no_bid: Mapped[Decimal | None] = mapped_column(PRICE)
    no_ask: Mapped[Decimal | None] = mapped_column(PRICE)
    last_price: Mapped[Decimal | None] = mapped_column(PRICE)
    yes_bid_size: Mapped[Decimal | None] = mapped_column(COUNT)
    yes_ask_size: Mapped[Decimal | None] = mapped_column(COUNT)
    volume: Mapped[Decimal | None] = mapped_column(COUNT)
    open_interest: Mapped[Decimal | None] = mapped_column(COUNT)
    status: Mapped[str | None]
    raw_data: Mapped[dict[str, Any] | None]


class OrderbookSnapshot(Base):
    """A full book (resting bids of both legs, ascending, as Kalshi sends them). Partitioned by month on ``ts``."""

    __tablename__ = "orderbook_snapshots"
    __table_args__ = (
        PrimaryKeyConstraint("ticker", "ts", "source"),
        CheckConstraint(_SOURCE_CHECK, name="source"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )

    ticker: Mapped[str]
    ts: Mapped[datetime]
    source: Mapped[str]
    received_at: Mapped[datetime]
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    yes_prices: Mapped[list[Decimal]] = mapped_column(ARRAY(PRICE))
    yes_sizes: Mapped[list[Decimal]] = mapped_column(ARRAY(COUNT))
    no_prices: Mapped[list[Decimal]] = mapped_column(ARRAY(PRICE))
    no_sizes: Mapped[list[Decimal]] = mapped_column(ARRAY(COUNT))


class MarketCandle1m(Base):
    """1-minute candles maintained at write time; coarser intervals roll up from here (DESIGN.md §10)."""

    __tablename__ = "market_candles_1m"
    __table_args__ = (PrimaryKeyConstraint("ticker", "minute"),)

    ticker: Mapped[str]
    minute: Mapped[datetime]  # start of the minute
    first_ts: Mapped[datetime]  # exchange time of the first and last snapshot folded in, to order late writes
    last_ts: Mapped[datetime]
    # Implied probability (DESIGN.md §7 rule) OHLC.
    prob_open: Mapped[Decimal | None] = mapped_column(PRICE)
    prob_high: Mapped[Decimal | None] = mapped_column(PRICE)
    prob_low: Mapped[Decimal | None] = mapped_column(PRICE)
    prob_close: Mapped[Decimal | None] = mapped_column(PRICE)
    # Last traded price OHLC.
    price_open: Mapped[Decimal | None] = mapped_column(PRICE)
    price_high: Mapped[Decimal | None] = mapped_column(PRICE)
    price_low: Mapped[Decimal | None] = mapped_column(PRICE)
    price_close: Mapped[Decimal | None] = mapped_column(PRICE)
    yes_bid_close: Mapped[Decimal | None] = mapped_column(PRICE)
    yes_ask_close: Mapped[Decimal | None] = mapped_column(PRICE)
    volume: Mapped[Decimal | None] = mapped_column(COUNT)  # cumulative, at the minute's close
    open_interest: Mapped[Decimal | None] = mapped_column(COUNT)
    snapshots: Mapped[int] = mapped_column(Integer, default=0)


class MarketCandleBlock(Base):
    """One closed hour of a market's 1-minute candles as the history route renders them, raw-deflate
    compressed (kalshi_analytics.markets.candle_blocks); kept by the recorder's sink."""

    __tablename__ = "market_candle_blocks"
    __table_args__ = (PrimaryKeyConstraint("ticker", "start"),)

    ticker: Mapped[str]
    start: Mapped[datetime]  # the hour's first minute
    candles: Mapped[int] = mapped_column(Integer)
    length: Mapped[int] = mapped_column(Integer)  # bytes of the rendered text
    crc: Mapped[int] = mapped_column(BigInteger)  # its CRC-32
    digest: Mapped[bytes] = mapped_column(LargeBinary)  # its blake2b
    deflate: Mapped[bytes] = mapped_column(LargeBinary)


class MarketSnapshotChunk(Base):
    """Up to 50 consecutive snapshots of a market in one closed hour, as the raw history route renders them,
    raw-deflate compressed, with their keyset keys (kalshi_analytics.markets.snapshot_chunks); kept by the
    recorder's sink."""

    __tablename__ = "market_snapshot_chunks"
    __table_args__ = (PrimaryKeyConstraint("ticker", "hour", "seq"),)

    ticker: Mapped[str]
    hour: Mapped[datetime]
    seq: Mapped[int] = mapped_column(SmallInteger)
    rows: Mapped[int] = mapped_column(Integer)
    last_ts: Mapped[datetime]
    max_spread: Mapped[Decimal] = mapped_column(PRICE)
    keys: Mapped[bytes] = mapped_column(LargeBinary)  # ts of each row, µs since the epoch, int64 little-endian
    sources: Mapped[bytes] = mapped_column(LargeBinary)  # source of each row, one byte (index into SOURCES)
    length: Mapped[int] = mapped_column(Integer)
    crc: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    deflate: Mapped[bytes] = mapped_column(LargeBinary)
