"""Paper trading (``live``): sessions, their fills, positions, equity points and events, and the runner's lease."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, SmallInteger, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import COUNT, MONEY, PRICE, Base

SESSION_STATUSES = ("running", "stopped", "failed")


class PaperSession(Base):
    """One strategy paper-trading a fixed set of markets with its own account, from ``started_at`` on.

    The account's state (cash, realised P&L, fees, counters) and the runner's high-water mark (``last_event_id``:
    the last journal event it applied) are written in the same transaction as the fills they follow from, so a
    restart resumes exactly where the last commit left it.
    """

    __tablename__ = "paper_sessions"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'stopped', 'failed')", name="status"),
        CheckConstraint("restart_policy IN ('resume', 'reset')", name="restart_policy"),
        Index("ix_paper_sessions_strategy_name", "strategy_name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=text("gen_random_uuid()"))
    name: Mapped[str | None]
    strategy_name: Mapped[str]
    strategy_version: Mapped[str]
    params: Mapped[dict[str, Any]]
    market_filter: Mapped[dict[str, Any]]  # the selection as given
    tickers: Mapped[list[str]] = mapped_column(ARRAY(Text))  # what it resolved to at the start
    config: Mapped[dict[str, Any]]  # capital, position limit, contract step, fill model, equity interval
    initial_capital: Mapped[Decimal] = mapped_column(MONEY)
    restart_policy: Mapped[str] = mapped_column(server_default=text("'resume'"))
    status: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    started_at: Mapped[datetime]  # data time from which it trades (its backtest window's start)
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None]
    reset_of: Mapped[uuid.UUID | None] = mapped_column(UUID)  # the session this one replaced (policy reset)
    cash: Mapped[Decimal] = mapped_column(MONEY)
    realised_pnl: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    fees_paid: Mapped[Decimal] = mapped_column(MONEY, server_default=text("0"))
    num_fills: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    skipped: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))  # intents not filled, why
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    processed_until: Mapped[datetime | None]  # data time of the last snapshot applied
    last_active_at: Mapped[datetime | None]  # the runner's last commit for it (wall time)
    runner: Mapped[str | None]  # instance id of the runner that last advanced it


class PaperFill(Base):
    """One fill: keyed by the snapshot it filled on and its place among that snapshot's fills, so replaying the
    event that caused it can never write it twice."""

    __tablename__ = "paper_fills"
    __table_args__ = (
        CheckConstraint("side IN ('yes', 'no')", name="side"),
        CheckConstraint("action IN ('buy', 'sell')", name="action"),
        Index("uq_paper_fills_cause", "session_id", "ticker", "snapshot_ts", "snapshot_source", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("paper_sessions.id", ondelete="CASCADE"))
    ticker: Mapped[str]
    side: Mapped[str]
    action: Mapped[str]
    price: Mapped[Decimal] = mapped_column(PRICE)
    count: Mapped[Decimal] = mapped_column(COUNT)
    fee: Mapped[Decimal] = mapped_column(MONEY)
    cash_after: Mapped[Decimal] = mapped_column(MONEY)
    snapshot_ts: Mapped[datetime]  # the fill's time: the snapshot it filled on (exchange time)
    snapshot_source: Mapped[str]
    seq: Mapped[int] = mapped_column(SmallInteger)
    signal: Mapped[dict[str, Any] | None]
    committed_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    event_id: Mapped[int] = mapped_column(BigInteger)  # the journal event (snapshot) that caused it


class PaperPosition(Base):
    """What a session holds now, per market and side (rows of zero once closed, with what was realised)."""

    __tablename__ = "paper_positions"

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("paper_sessions.id", ondelete="CASCADE"), primary_key=True)
    ticker: Mapped[str] = mapped_column(primary_key=True)
    side: Mapped[str] = mapped_column(primary_key=True)
    contracts: Mapped[Decimal] = mapped_column(COUNT)
    avg_price: Mapped[Decimal | None] = mapped_column(MONEY)
    mark: Mapped[Decimal | None] = mapped_column(PRICE)  # the last bid of the side
    updated_at: Mapped[datetime]  # data time


class PaperEquity(Base):
    """The account's value sampled every equity interval of data time (cash + positions at their marks)."""

    __tablename__ = "paper_equity"

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("paper_sessions.id", ondelete="CASCADE"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    equity: Mapped[Decimal] = mapped_column(MONEY)
    cash: Mapped[Decimal] = mapped_column(MONEY)


class PaperSessionEvent(Base):
    """What happened to a session: started, downtime, stale market and repaired, settlement, late data, stopped."""

    __tablename__ = "paper_session_events"
    __table_args__ = (Index("ix_paper_session_events_session_id_id", "session_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("paper_sessions.id", ondelete="CASCADE"))
    at: Mapped[datetime]  # data time it concerns (downtime: its start)
    kind: Mapped[str]
    ticker: Mapped[str | None]
    until: Mapped[datetime | None]  # the end of what it describes (downtime, staleness)
    details: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    recorded_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class LiveRunnerLease(Base):
    """The live runner's lease: the recorder's (``recorder_lease``) shape, its own table so that taking it never
    touches the recorder's writers."""

    __tablename__ = "live_runner_lease"

    lock_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str]
    backend_pid: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    lease_until: Mapped[datetime]


class LiveRunnerHeartbeat(Base):
    """One row per live runner instance (``recorder_heartbeats``' shape): leader or standby, and what it does."""

    __tablename__ = "live_runner_heartbeats"

    instance_id: Mapped[str] = mapped_column(primary_key=True)
    role: Mapped[str]
    hostname: Mapped[str]
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    leader_since: Mapped[datetime | None]
    info: Mapped[dict[str, Any] | None]
