"""Coverage of the recording over a window: per market, its feed gaps and its snapshots by source."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


@dataclass(frozen=True)
class GapInfo:
    key: str
    market_ticker: str | None
    channel: str
    sid: int | None
    cause: str
    gap_start: datetime
    gap_end: datetime | None
    repaired_at: datetime | None
    repair_method: str | None
    seconds: float  # the part of the gap inside the window (an open gap runs to the window's end or now)
    unrepairable_reason: str | None = None  # set when the gap was given up for good (never with repaired_at)

    @property
    def repaired(self) -> bool:
        return self.repaired_at is not None

    @property
    def is_open(self) -> bool:
        return self.repaired_at is None and self.unrepairable_reason is None


@dataclass
class MarketCoverage:
    ticker: str
    gaps: int = 0
    gaps_open: int = 0
    gaps_unrepairable: int = 0
    gap_seconds: float = 0.0
    repair_methods: Counter[str] = field(default_factory=Counter)
    snapshots: Counter[str] = field(default_factory=Counter)  # by source

    @property
    def gaps_repaired(self) -> int:
        return self.gaps - self.gaps_open - self.gaps_unrepairable


@dataclass(frozen=True)
class CoverageReport:
    since: datetime
    until: datetime
    markets: list[MarketCoverage]  # by ticker
    subscription_gaps: list[GapInfo]  # gaps of a whole subscription (no market), by start

    @property
    def window_seconds(self) -> float:
        return (self.until - self.since).total_seconds()


GAPS_SQL = text(
    """
    SELECT key, market_ticker, channel, sid, cause, gap_start, gap_end, repaired_at, repair_method,
           EXTRACT(EPOCH FROM LEAST(COALESCE(gap_end, now()), :until) - GREATEST(gap_start, :since))::float8,
           unrepairable_reason
    FROM feed_gaps
    WHERE gap_start < :until AND COALESCE(gap_end, 'infinity'::timestamptz) > :since
      AND (CAST(:ticker AS text) IS NULL OR market_ticker = :ticker OR market_ticker IS NULL)
    ORDER BY gap_start, key
    """
)

SNAPSHOTS_SQL = text(
    """
    SELECT ticker, source, count(*) FROM market_snapshots
    WHERE ts >= :since AND ts < :until AND (CAST(:ticker AS text) IS NULL OR ticker = :ticker)
    GROUP BY ticker, source
    """
)


async def coverage(
    session: AsyncSession | AsyncConnection, since: datetime, until: datetime, ticker: str | None = None
) -> CoverageReport:
    """The coverage report of ``[since, until)``, for every market or just ``ticker``."""
    if until <= since:
        raise ValueError("the window is empty: until must be after since")
    params = {"since": since, "until": until, "ticker": ticker}
    markets: dict[str, MarketCoverage] = {}
    subscription: list[GapInfo] = []
    for r in await session.execute(GAPS_SQL, params):
        key, market, channel, sid, cause, start, end, repaired_at, method, seconds, unrepairable = r
        gap = GapInfo(
            key, market, channel, sid, cause, start, end, repaired_at, method, max(0.0, float(seconds)), unrepairable
        )
        if gap.market_ticker is None:
            subscription.append(gap)
            continue
        m = markets.setdefault(gap.market_ticker, MarketCoverage(gap.market_ticker))
        m.gaps += 1
        m.gap_seconds += gap.seconds
        if gap.repaired:
            m.repair_methods[gap.repair_method or "?"] += 1
        elif gap.is_open:
            m.gaps_open += 1
        else:
            m.gaps_unrepairable += 1
    for t, source, n in await session.execute(SNAPSHOTS_SQL, params):
        markets.setdefault(t, MarketCoverage(t)).snapshots[source] += int(n)
    return CoverageReport(since, until, [markets[t] for t in sorted(markets)], subscription)


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    return str(timedelta(seconds=round(seconds)))
