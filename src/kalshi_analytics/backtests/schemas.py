"""Request and response models of the backtests and strategies API (pydantic v2).

Money (P&L, fees, prices, capital) is an exact decimal serialised as a JSON **string**, as in the markets API;
times are ISO 8601 UTC. Metrics are the engine's own JSON (see :mod:`kalshi_analytics.backtests.metrics`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kalshi_analytics.backtests.data import MarketFilter
from kalshi_analytics.backtests.service import (
    FILL_LATENCY_DOC,
    INTERVAL_DOC,
    TRADE_QUOTES_DOC,
    UNKNOWN_SIZE_DOC,
    WALK_BOOK_DOC,
    BacktestRequest,
    validate_request,
)
from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.trading.fills import DEFAULT_UNKNOWN_SIZE_CAP

MAX_MONEY = Decimal(10**12)
BacktestStatus = Literal["queued", "running", "done", "failed"]


class BacktestCreate(BaseModel):
    """``POST /api/v1/backtests`` body, in the richer form (``start``/``end`` times, a ``market_filter`` object)
    or the seed's (``start_date``/``end_date`` whole days, ``market_filter`` a category word like ``"politics"``),
    one form per side. :meth:`to_request` turns it into the service's :class:`BacktestRequest`; the window rules
    are checked there, so that an end before the start is reported against the field given (``body.end`` or
    ``body.end_date``) rather than the whole body."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy: str = Field(min_length=1, max_length=200, description="a name from `GET /api/v1/strategies`")
    strategy_version: str | None = Field(None, max_length=50, description="default: the newest version")
    params: dict[str, Any] = Field(default_factory=dict, description="the strategy's parameters (its `params_schema`)")
    start: datetime | None = Field(None, description="window start, inclusive (no offset = UTC); or `start_date`")
    end: datetime | None = Field(None, description="window end, exclusive; or `end_date`")
    start_date: date | None = Field(None, description="the seed's form: the first whole day (UTC) of the window")
    end_date: date | None = Field(None, description="the seed's form: the last whole day (UTC), included")
    market_filter: MarketFilter | Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=MarketFilter,
        description="categories / series / events / tickers (empty = any), or one category word like `politics`; "
        "categories match case-insensitively",
    )
    initial_capital: Decimal = Field(Decimal(10_000), gt=0, le=MAX_MONEY)
    max_position: Decimal = Field(Decimal(10_000), gt=0, le=MAX_MONEY)
    contract_step: Decimal = Field(Decimal(1), gt=0, le=MAX_MONEY, description="Fill sizes are rounded down to this.")
    vectorised: bool | None = None
    fill_latency_seconds: float = Field(0.0, ge=0, le=86_400, description=FILL_LATENCY_DOC)
    unknown_size_cap: Decimal = Field(DEFAULT_UNKNOWN_SIZE_CAP, gt=0, le=MAX_MONEY, description=UNKNOWN_SIZE_DOC)
    walk_book: bool = Field(True, description=WALK_BOOK_DOC)
    trade_quotes: bool = Field(True, description=TRADE_QUOTES_DOC)
    equity_interval_seconds: float = Field(60.0, ge=1, le=86_400, description=INTERVAL_DOC)
    keep_empty: bool = Field(
        False,
        description="queue the run even when it selects no data (an unknown market, a window without snapshots); "
        "otherwise that is a 422 of type `no-data` and nothing is stored",
    )

    def to_request(self) -> BacktestRequest:
        """The service's request; :class:`InvalidInputError` naming each field at fault (``end_date``, ``start``).
        Only the two forms are read here: the window's rules are the service's ``check_window``."""
        errors: list[tuple[str, str]] = []
        start = self._bound("start", self.start, self.start_date, 0, errors)
        end = self._bound("end", self.end, self.end_date, 1, errors)
        # The seed's days: the end day must come after the start day (and is then included whole).
        if self.start_date is not None and self.end_date is not None and self.end_date <= self.start_date:
            errors.append(("end_date", "end_date must be after start_date"))
        if errors or start is None or end is None:  # a missing side is always among the errors
            raise InvalidInputError("; ".join(f"{f}: {m}" for f, m in errors), errors=errors)
        f = self.market_filter
        try:
            return validate_request(
                self.strategy,
                self.params,
                start,
                end,
                strategy_version=self.strategy_version,
                market_filter=MarketFilter(categories=[f]) if isinstance(f, str) else f,
                initial_capital=self.initial_capital,
                max_position=self.max_position,
                contract_step=self.contract_step,
                vectorised=self.vectorised,
                fill_latency_seconds=self.fill_latency_seconds,
                unknown_size_cap=self.unknown_size_cap,
                walk_book=self.walk_book,
                trade_quotes=self.trade_quotes,
                equity_interval_seconds=self.equity_interval_seconds,
            )
        except InvalidInputError as exc:  # a window out of range: name the field the client gave
            exc.field = self._given(exc.field)
            exc.errors = [(self._given(f) or f, m) for f, m in exc.errors]
            raise

    def _given(self, field: str | None) -> str | None:
        """``start``/``end`` as the client wrote that side: ``start_date``/``end_date`` for the seed's days."""
        if (field == "start" and self.start_date) or (field == "end" and self.end_date):
            return f"{field}_date"
        return field

    @staticmethod
    def _bound(
        name: str, ts: datetime | None, day: date | None, days_after: int, errors: list[tuple[str, str]]
    ) -> datetime | None:
        """One side of the window from its time or its whole day (an end day counts whole: its next midnight)."""
        if ts is not None and day is not None:
            errors.append((f"{name}_date", f"give {name} or {name}_date, not both"))
            return None
        if ts is not None:
            return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
        if day is not None:
            try:
                return datetime.combine(day, time(), UTC) + timedelta(days=days_after)
            except OverflowError:  # the day after 9999-12-31
                errors.append((f"{name}_date", f"{name}_date is out of range"))
                return None
        errors.append((name, f"Field required: {name} (a time) or {name}_date (a day)"))
        return None


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
    sharpe: float | None = Field(None, description="annualised Sharpe ratio of the equity curve (`metrics.sharpe`)")
    max_drawdown: float | None = Field(
        None, description="largest fall of equity from a previous peak, in dollars (`metrics.max_drawdown`)"
    )
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
    config: dict[str, Any] = Field(
        description="initial_capital, max_position, contract_step, vectorised, and the fill model's settings "
        "(fill_latency_seconds, unknown_size_cap, walk_book, trade_quotes) and equity_interval_seconds"
    )
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
