"""Backtest runs and their executions (the seed's BacktestResult / BacktestExecution)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import COUNT, MONEY, PRICE, Base


class BacktestResult(Base):
    __tablename__ = "backtest_results"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        Index("ix_backtest_results_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=text("gen_random_uuid()"))
    strategy_name: Mapped[str]
    strategy_version: Mapped[str]
    params: Mapped[dict[str, Any]]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    market_filter: Mapped[dict[str, Any] | None]
    status: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None]
    snapshots_processed: Mapped[int | None] = mapped_column(BigInteger)
    num_trades: Mapped[int | None] = mapped_column(Integer)
    total_pnl: Mapped[Decimal | None] = mapped_column(MONEY)
    fees_paid: Mapped[Decimal | None] = mapped_column(MONEY)
    metrics: Mapped[dict[str, Any] | None]
    equity_curve: Mapped[dict[str, Any] | None]
    feed_gaps: Mapped[dict[str, Any] | None]  # the gaps inside the window, so a reader can judge the data


class BacktestExecution(Base):
    __tablename__ = "backtest_executions"
    __table_args__ = (
        CheckConstraint("side IN ('yes', 'no')", name="side"),
        Index("ix_backtest_executions_backtest_id_entry_ts", "backtest_id", "entry_ts"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    backtest_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("backtest_results.id", ondelete="CASCADE"))
    ticker: Mapped[str]
    side: Mapped[str]
    size: Mapped[Decimal] = mapped_column(COUNT)
    entry_ts: Mapped[datetime]
    entry_price: Mapped[Decimal] = mapped_column(PRICE)
    entry_snapshot_ts: Mapped[datetime | None]
    entry_snapshot_source: Mapped[str | None]
    exit_ts: Mapped[datetime | None]
    exit_price: Mapped[Decimal | None] = mapped_column(PRICE)
    exit_snapshot_ts: Mapped[datetime | None]
    exit_snapshot_source: Mapped[str | None]
    exit_reason: Mapped[str | None]  # signal | settlement | marked (unresolved at window end)
    fees: Mapped[Decimal] = mapped_column(MONEY)
    pnl: Mapped[Decimal | None] = mapped_column(MONEY)
    signal: Mapped[dict[str, Any] | None]
