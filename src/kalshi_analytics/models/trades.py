"""Public trade prints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Index
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import COUNT, PRICE, Base


class Trade(Base):
    __tablename__ = "trades"
    __table_args__ = (
        Index("ix_trades_ticker_ts", "ticker", "ts"),
        CheckConstraint("source IN ('websocket', 'poll', 'backfill')", name="source"),
    )

    trade_id: Mapped[str] = mapped_column(primary_key=True)
    ticker: Mapped[str]
    ts: Mapped[datetime]  # exchange time (created_time)
    received_at: Mapped[datetime]
    yes_price: Mapped[Decimal] = mapped_column(PRICE)
    no_price: Mapped[Decimal] = mapped_column(PRICE)
    count: Mapped[Decimal] = mapped_column(COUNT)
    taker_side: Mapped[str | None]  # yes | no (taker outcome side)
    is_block_trade: Mapped[bool | None]
    source: Mapped[str]
