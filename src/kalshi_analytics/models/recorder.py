"""Recorder bookkeeping: feed gaps (the coverage report), instance heartbeats and the leader's lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import Base

GAP_CAUSES = ("seq_jump", "disconnect", "outage", "startup", "crash", "failover", "other")


class FeedGap(Base):
    """A stretch where the feed may have lost data, and how (and whether) it was repaired."""

    __tablename__ = "feed_gaps"
    __table_args__ = (
        CheckConstraint(
            "cause IN ('seq_jump', 'disconnect', 'outage', 'startup', 'crash', 'failover', 'other')",
            name="cause",
        ),
        Index("ix_feed_gaps_gap_start", "gap_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Client-generated (e.g. uuid4 hex), so the recorder can open and repair a gap while PostgreSQL is down.
    key: Mapped[str] = mapped_column(unique=True)
    detected_at: Mapped[datetime]
    channel: Mapped[str]
    sid: Mapped[int | None] = mapped_column(Integer)
    market_ticker: Mapped[str | None]  # None = the whole subscription
    cause: Mapped[str]
    seq_expected: Mapped[int | None] = mapped_column(BigInteger)
    seq_received: Mapped[int | None] = mapped_column(BigInteger)
    gap_start: Mapped[datetime]
    gap_end: Mapped[datetime | None]
    repaired_at: Mapped[datetime | None]
    repair_method: Mapped[str | None]
    # Set instead of repaired_at when the hole can never be filled; a gap is open while both are NULL.
    unrepairable_reason: Mapped[str | None]
    details: Mapped[dict[str, Any] | None]


class RecorderHeartbeat(Base):
    """One row per recorder instance; the leader holds the advisory lock, standbys wait for it."""

    __tablename__ = "recorder_heartbeats"

    instance_id: Mapped[str] = mapped_column(primary_key=True)
    role: Mapped[str]  # leader | standby | stopped
    hostname: Mapped[str]
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    leader_since: Mapped[datetime | None]
    info: Mapped[dict[str, Any] | None]


class RecorderLease(Base):
    """Who leads the recorder of one lock key, until when (by the database's clock), under which epoch.

    The epoch is the fencing token: every write of the leader checks it in its own transaction, and a standby that
    takes over an expired lease bumps it, so a leader that wakes from a freeze has its late batches refused.
    """

    __tablename__ = "recorder_lease"

    lock_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str]  # instance_id
    backend_pid: Mapped[int | None] = mapped_column(Integer)  # the holder's lock connection
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    lease_until: Mapped[datetime]
