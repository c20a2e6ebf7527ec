"""Exchange catalogue: series, events and markets (one row each, upserted as metadata changes)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, func
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import COUNT, PRICE, Base


class Series(Base):
    __tablename__ = "series"

    ticker: Mapped[str] = mapped_column(primary_key=True)
    title: Mapped[str | None]
    category: Mapped[str | None]
    frequency: Mapped[str | None]
    # Fee model of KALSHI_API.md §7: quadratic | quadratic_with_maker_fees | ... | flat.
    fee_type: Mapped[str | None]
    fee_multiplier: Mapped[Decimal | None] = mapped_column(PRICE)
    raw: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Event(Base):
    __tablename__ = "events"

    event_ticker: Mapped[str] = mapped_column(primary_key=True)
    series_ticker: Mapped[str | None] = mapped_column(index=True)
    title: Mapped[str | None]
    sub_title: Mapped[str | None]
    category: Mapped[str | None]
    mutually_exclusive: Mapped[bool | None]
    strike_date: Mapped[datetime | None]
    raw: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Market(Base):
    __tablename__ = "markets"
    __table_args__ = (
        Index("ix_markets_event_ticker", "event_ticker"),
        Index("ix_markets_series_ticker", "series_ticker"),
        Index("ix_markets_status_close_time", "status", "close_time"),
    )

    ticker: Mapped[str] = mapped_column(primary_key=True)
    event_ticker: Mapped[str]
    series_ticker: Mapped[str | None]
    title: Mapped[str | None]
    subtitle: Mapped[str | None]
    yes_sub_title: Mapped[str | None]
    no_sub_title: Mapped[str | None]
    category: Mapped[str | None]
    market_type: Mapped[str | None]
    # Exchange vocabulary (initialized|inactive|active|closed|determined|disputed|amended|finalized); unknown kept.
    status: Mapped[str]
    open_time: Mapped[datetime | None]
    close_time: Mapped[datetime | None]
    expected_expiration_time: Mapped[datetime | None]
    result: Mapped[str | None]
    settlement_value: Mapped[Decimal | None] = mapped_column(PRICE)
    settled_at: Mapped[datetime | None]
    notional_value: Mapped[Decimal | None] = mapped_column(PRICE)
    price_level_structure: Mapped[str | None]
    # Authoritative tick grid: [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}, ...].
    price_ranges: Mapped[list[Any] | None]
    volume: Mapped[Decimal | None] = mapped_column(COUNT)
    open_interest: Mapped[Decimal | None] = mapped_column(COUNT)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    raw: Mapped[dict[str, Any] | None]


class MarketCloseTime(Base):
    """Each close time a market was given, from when the recorder knew it: strategies in a backtest see, at each
    snapshot, the close time known then (``markets.close_time`` holds only the latest; an early close rewrites it)."""

    __tablename__ = "market_close_times"

    ticker: Mapped[str] = mapped_column(primary_key=True)
    known_at: Mapped[datetime] = mapped_column(primary_key=True)
    close_time: Mapped[datetime]
