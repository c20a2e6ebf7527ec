"""Request and response models of the backtests and strategies API (pydantic v2).

Money (P&L, fees, prices, capital) is an exact decimal serialised as a JSON **string**, as in the markets API;
times are ISO 8601 UTC. Metrics are the engine's own JSON (see :mod:`kalshi_analytics.backtests.metrics`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kalshi_analytics.backtests.service import BacktestRequest

MAX_MONEY = Decimal(10**12)
BacktestStatus = Literal["queued", "running", "done", "failed"]


class BacktestCreate(BacktestRequest):
    """``POST /api/v1/backtests`` body: a :class:`BacktestRequest`. The window check is left to
    :func:`~kalshi_analytics.backtests.service.check_request`, so that an end before the start is reported
    against ``body.end`` rather than the whole body."""

    strategy: str = Field(min_length=1, max_length=200, description="a name from `GET /api/v1/strategies`")
    strategy_version: str | None = Field(None, max_length=50, description="default: the newest version")
    initial_capital: Decimal = Field(Decimal(10_000), gt=0, le=MAX_MONEY)
    max_position: Decimal = Field(Decimal(10_000), gt=0, le=MAX_MONEY)
    contract_step: Decimal = Field(Decimal(1), gt=0, le=MAX_MONEY, description="Fill sizes are rounded down to this.")

    def _window(self) -> BacktestCreate:  # type: ignore[override]  # replaces the parent's model validator
        return self


class BacktestLinks(BaseModel):
    self: str
    executions: str
    equity: str


class BacktestCreated(BaseModel):
    id: uuid.UUID
    status: BacktestStatus
    links: BacktestLinks


class StrategyRef(BaseModel):
    name: str
    version: str


class Window(BaseModel):
    start: datetime
    end: datetime


class BacktestSummary(BaseModel):
    """A row of the backtests list."""

    id: uuid.UUID
    status: BacktestStatus
    strategy: StrategyRef
    window: Window
    created_at: datetime
    finished_at: datetime | None
    num_trades: int | None
    total_pnl: Decimal | None
    links: BacktestLinks


class BacktestPage(BaseModel):
    items: list[BacktestSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class BacktestDetail(BaseModel):
    """One backtest: what was asked, its state, and (when done) its results."""

    id: uuid.UUID
    status: BacktestStatus
    strategy: StrategyRef
    params: dict[str, Any]
    window: Window
    market_filter: dict[str, Any] = Field(description="categories / series / events / tickers (empty = any)")
    config: dict[str, Any] = Field(description="initial_capital, max_position, contract_step, vectorised")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="why the run failed (status `failed`)")
    snapshots_processed: int | None
    num_trades: int | None
    total_pnl: Decimal | None
    fees_paid: Decimal | None
    metrics: dict[str, Any] | None
    feed_gaps: dict[str, Any] | None = Field(description="recorder feed gaps overlapping the window")
    links: BacktestLinks


class BacktestExecution(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticker: str
    side: Literal["yes", "no"]
    size: Decimal
    entry_ts: datetime
    entry_price: Decimal
    entry_snapshot_ts: datetime | None
    entry_snapshot_source: str | None
    exit_ts: datetime | None
    exit_price: Decimal | None
    exit_snapshot_ts: datetime | None
    exit_snapshot_source: str | None
    exit_reason: str | None
    fees: Decimal
    pnl: Decimal | None
    signal: Any = None


class ExecutionPage(BaseModel):
    backtest_id: uuid.UUID
    items: list[BacktestExecution]
    next_cursor: str | None


class EquityCurve(BaseModel):
    backtest_id: uuid.UUID
    status: BacktestStatus
    ts: list[datetime] = Field(description="sample times (empty until the run is done)")
    equity: list[float] = Field(description="account value in dollars at each `ts`")


class StrategyInfo(BaseModel):
    name: str
    version: str
    description: str
    vectorised: bool = Field(description="has a vectorised signal path (fast)")
    params_schema: dict[str, Any] = Field(description="JSON schema of the strategy's `params`")
