"""Request and response models of paper trading (``/api/v1/paper-sessions``, strategy performance).

Money is an exact decimal serialised as a JSON string, as everywhere in the API; times are ISO 8601 UTC.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kalshi_analytics.backtests.data import MarketFilter
from kalshi_analytics.backtests.service import FILL_LATENCY_DOC, INTERVAL_DOC, TRADE_QUOTES_DOC, UNKNOWN_SIZE_DOC
from kalshi_analytics.trading.fills import DEFAULT_UNKNOWN_SIZE_CAP

MAX_MONEY = Decimal(10**12)
SessionStatus = Literal["running", "stopped", "failed"]
RestartPolicy = Literal["resume", "reset"]
#: The Sharpe ratio a strategy's backtest should reach before it trades live (the seed's decision gate).
SHARPE_GATE = 0.5
#: A Sharpe ratio annualised from less data than this is too short to read (the dashboard says so too).
SHARPE_SHORT_WINDOW = timedelta(days=7)


class PaperSessionCreate(BaseModel):
    """``POST /api/v1/paper-sessions``: a strategy, a market selection and an account. It trades from now on."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy: str = Field(min_length=1, max_length=200, description="a name from `GET /api/v1/strategies`")
    strategy_version: str | None = Field(None, max_length=50, description="default: the newest version")
    params: dict[str, Any] = Field(default_factory=dict, description="the strategy's parameters (its `params_schema`)")
    market_filter: MarketFilter | Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=MarketFilter,
        description="tickers, series, events, categories (all given must hold), or one category word; it is "
        "resolved to the matching markets once, at the start",
    )
    name: str | None = Field(None, max_length=200)
    initial_capital: Decimal = Field(Decimal(10_000), gt=0, le=MAX_MONEY)
    max_position: Decimal = Field(Decimal(10_000), gt=0, le=MAX_MONEY)
    contract_step: Decimal = Field(Decimal(1), gt=0, le=MAX_MONEY, description="Fill sizes are rounded down to this.")
    fill_latency_seconds: float = Field(0.0, ge=0, le=3_600, description=FILL_LATENCY_DOC)
    unknown_size_cap: Decimal = Field(DEFAULT_UNKNOWN_SIZE_CAP, gt=0, le=MAX_MONEY, description=UNKNOWN_SIZE_DOC)
    trade_quotes: bool = Field(True, description=TRADE_QUOTES_DOC)
    equity_interval_seconds: float = Field(60.0, ge=1, le=86_400, description=INTERVAL_DOC)
    restart_policy: RestartPolicy = Field(
        "resume",
        description="after the runner was down: `resume` rebuilds the strategy's state from the missed data "
        "without trading and trades on; `reset` stops this session and starts a new one with a fresh account",
    )

    def selection(self) -> MarketFilter:
        f = self.market_filter
        return MarketFilter(categories=[f]) if isinstance(f, str) else f


class SessionLinks(BaseModel):
    self: str
    fills: str
    positions: str
    equity: str
    events: str
    compare: str


class PaperSessionView(BaseModel):
    id: uuid.UUID
    name: str | None
    strategy: str
    strategy_version: str
    params: dict[str, Any]
    market_filter: dict[str, Any]
    tickers: list[str]
    config: dict[str, Any]
    status: SessionStatus
    restart_policy: RestartPolicy
    created_at: datetime
    started_at: datetime
    stopped_at: datetime | None
    stop_reason: str | None
    reset_of: uuid.UUID | None
    initial_capital: Decimal
    cash: Decimal
    equity: Decimal = Field(description="cash + open positions at their marks (the last bid of their side)")
    total_pnl: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    fees_paid: Decimal
    num_fills: int
    skipped: dict[str, int] = Field(description="intents that did not fill, by reason (e.g. `stale`, `capital`)")
    processed_until: datetime | None = Field(description="data time of the last snapshot the runner applied")
    last_active_at: datetime | None = Field(description="the runner's last commit for this session (wall time)")
    links: SessionLinks


class PaperSessionPage(BaseModel):
    items: list[PaperSessionView]


class FillView(BaseModel):
    id: int
    ticker: str
    side: Literal["yes", "no"]
    action: Literal["buy", "sell"]
    price: Decimal
    count: Decimal
    fee: Decimal
    cash_after: Decimal
    ts: datetime = Field(description="the snapshot it filled on (exchange time)")
    source: str
    signal: dict[str, Any] | None
    committed_at: datetime


class FillPage(BaseModel):
    session_id: uuid.UUID
    items: list[FillView]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last page")


class PositionView(BaseModel):
    ticker: str
    side: Literal["yes", "no"]
    contracts: Decimal
    avg_price: Decimal | None
    mark: Decimal | None = Field(description="the last bid of this side (what selling now would get)")
    unrealized_pnl: Decimal | None
    updated_at: datetime


class EquityPoint(BaseModel):
    ts: datetime
    equity: Decimal
    cash: Decimal


class SessionEventView(BaseModel):
    id: int
    at: datetime
    kind: str
    ticker: str | None
    until: datetime | None
    details: dict[str, Any]
    recorded_at: datetime


class PaperSessionLive(BaseModel):
    """``GET /api/v1/paper-sessions/{id}/live``: everything a session page shows, read in ONE database snapshot, and
    the journal id that snapshot is as of. Resume the live stream after ``as_of_event_id`` (``last_event_id=``) to
    get exactly the changes that came later: none missed, none twice."""

    as_of_event_id: int = Field(description="the stream's last event id this state includes")
    session: PaperSessionView
    positions: list[PositionView] = Field(description="open positions")
    fills: list[FillView] = Field(description="the latest fills (at most `fills_limit`), oldest first")
    equity: list[EquityPoint]
    events: list[SessionEventView]


class SessionPerformance(BaseModel):
    id: uuid.UUID
    status: SessionStatus
    total_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    sharpe_ratio: float | None = Field(description="annualised (365 days) from the equity points; null below two")
    max_drawdown: Decimal = Field(description="largest fall of equity from a previous peak, dollars")
    exposure: Decimal = Field(description="cost of the open positions, dollars")
    fees_paid: Decimal
    num_fills: int
    positions: list[PositionView]


class BacktestGate(BaseModel):
    """The seed's decision gate: the strategy's latest backtest Sharpe ratio against the threshold."""

    threshold: float = SHARPE_GATE
    backtest_id: uuid.UUID | None
    sharpe_ratio: float | None
    window_start: datetime | None
    window_end: datetime | None
    passed: bool
    note: str


class StrategyPerformance(BaseModel):
    """``GET /api/v1/strategies/{name}/performance``: the seed's fields across the strategy's running sessions,
    and per session."""

    strategy: str
    total_pnl: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    sharpe_ratio: float | None = Field(description="of the summed equity of its running sessions")
    max_drawdown: Decimal
    exposure: Decimal
    positions: list[PositionView]
    sessions: list[SessionPerformance]
    backtest_gate: BacktestGate


class Difference(BaseModel):
    kind: Literal["only_paper", "only_backtest", "pnl"]
    ticker: str | None
    ts: datetime | None
    side: str | None
    action: str | None
    price: Decimal | None
    count: Decimal | None
    explanation: str
    cause: Literal["downtime", "stale", "late_data", "before_resume", "unexplained", "carried"]


class CompareReport(BaseModel):
    session_id: uuid.UUID
    window_start: datetime
    window_end: datetime
    paper_fills: int
    backtest_fills: int
    paper_pnl: Decimal
    backtest_pnl: Decimal
    differences: list[Difference]
    unexplained: int
