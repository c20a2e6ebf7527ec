"""One time base: the as-of rule every snapshot passes before it is written (DESIGN.md §5).

Rows reach the sink from three clocks: ``ticker`` frames carry the exchange's time, REST answers (poll, gap
repair) only our receipt time, and Kalshi's CDN may hand out an answer up to ``max-age`` (15 s) old. Written as
they come, one market's series would interleave them: volume 1571 from the stream, then 1259 from an older
cached poll; ``determined`` and then ``active`` again. :class:`SnapshotGate` stands in front of the sink (the
recorder is the only writer, so its memory is the truth) and keeps, per market, a high-water mark: the last
admitted points (time, cumulative volume, status rank), the time of the last stream frame, and a status floor
that lifecycle events raise.

- Any row: its volume must not be below that of a row before it, nor above that of a row after it; the same
  for its status rank (and never below the floor). A row older than the window kept is dropped (``late``).
- A stream row keeps its exchange time and may land slightly in the past (frames in flight when a poll was
  written) if it fits between its neighbours.
- A REST row is appended after everything recorded or not at all. Its time is when the answer was made if the
  server says (``Date`` − ``Age``, see :mod:`kalshi_analytics.kalshi.answer_time`); without that, the answer
  may be ``rest_max_age`` older than its receipt. It is written only as news that cannot be stale: a later
  status (the ticker channel carries none); or, unless the stream spoke after the answer may have been made
  (then the stream is authoritative: ``stream_authoritative``), a higher volume (volume only grows, so it proves
  the answer newer than the last row) or an answer made after the last row. Else it is ``stale``; a REST row
  equal to the last one is ``unchanged``.
- Open interest is not checked: on Kalshi it falls when positions close.

Held-back REST rows that differ from the recorded state are reported to ``on_held_back`` (the poller then polls
them again instead of treating the state as already seen), so a state missed by the stream is written as soon
as an answer is fresh enough. Markets rows get the same protection where it matters: a status or volume older
than the mark is not upserted (the field is left out; a ``MarketRow`` field of None keeps the stored value).
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.kalshi.status import status_rank
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.rows import MarketRow, SinkItem, SnapshotRow

log = get_logger(__name__)

Put = Callable[[SinkItem], Awaitable[None]]
STREAM_SOURCES = frozenset({"websocket"})
WINDOW = 32  # points kept per market: enough to place frames that were in flight behind a poll


class Point(NamedTuple):
    ts: datetime
    volume: Decimal | None
    rank: int | None


def _values(row: SnapshotRow) -> tuple[Any, ...]:
    return (row.yes_bid, row.yes_ask, row.last_price, row.volume, row.open_interest)


@dataclass
class MarketMark:
    """The high-water mark of one market: the newest admitted points, oldest first."""

    points: list[Point] = field(default_factory=list)
    head_values: tuple[Any, ...] | None = None  # market data of the newest admitted row
    stream_ts: datetime | None = None  # exchange time of the newest stream row
    rank: int | None = None  # latest status rank in the admitted snapshots (outlives the window)
    floor: int | None = None  # status rank no later row may fall below (lifecycle, markets rows)

    @property
    def head_ts(self) -> datetime | None:
        return self.points[-1].ts if self.points else None

    def volume_bounds(self, ts: datetime) -> tuple[Decimal | None, Decimal | None]:
        """The volume of the last row at or before ``ts`` and of the first row at or after it."""
        lo = hi = None
        for p in self.points:
            if p.volume is None:
                continue
            if p.ts <= ts:
                lo = p.volume
            if p.ts >= ts and hi is None:
                hi = p.volume
        return lo, hi

    def rank_bounds(self, ts: datetime) -> tuple[int | None, int | None]:
        """The status rank no row at ``ts`` may fall below, and the one it may not exceed (a later row's)."""
        lo = max((r for r in (self.floor, self.rank) if r is not None), default=None)
        later = [p.rank for p in self.points if p.ts > ts and p.rank is not None]
        return lo, min(later) if later else None

    @property
    def head_volume(self) -> Decimal | None:
        for p in reversed(self.points):
            if p.volume is not None:
                return p.volume
        return None

    def add(self, row: SnapshotRow, rank: int | None, window: int) -> None:
        point = Point(row.ts, row.volume, rank)
        points = self.points
        if not points or row.ts > points[-1].ts:  # the usual case: the newest row
            points.append(point)
            self.head_values = _values(row)
        else:
            i = bisect.bisect_right([p.ts for p in points], row.ts)
            points.insert(i, point)
            if i == len(points) - 1:
                self.head_values = _values(row)
        if len(points) > window:
            del points[: len(points) - window]
        if row.source in STREAM_SOURCES and (self.stream_ts is None or row.ts > self.stream_ts):
            self.stream_ts = row.ts
        if rank is not None and (self.rank is None or rank > self.rank):
            self.rank = rank


class SnapshotGate:
    """Admits or holds back snapshot rows by the as-of rule, then hands everything else on to ``put``."""

    def __init__(
        self,
        put: Put,
        *,
        metrics: RecorderMetrics | None = None,
        rest_max_age: float = 15.0,
        window: int = WINDOW,
        summary_seconds: float = 30.0,
        on_held_back: Callable[[str], None] | None = None,
    ) -> None:
        self._put = put
        self.metrics = metrics or RecorderMetrics()
        self.rest_max_age = timedelta(seconds=rest_max_age)
        self.window = window
        self.summary_seconds = summary_seconds
        self.on_held_back = on_held_back
        self.marks: dict[str, MarketMark] = {}
        self.held_back: Counter[str] = Counter()  # since start, by reason
        self._unlogged: Counter[str] = Counter()
        self._logged_at = time.monotonic()

    # ---------------------------------------------------------------------------------------------- seeding
    async def seed(self, engine: AsyncEngine, *, recent: timedelta = timedelta(days=1)) -> int:
        """The marks of the markets still moving, from what is stored (a new leader continues its predecessor)."""
        sql = text(
            """
            SELECT m.ticker, m.status, s.ts, v.volume, st.status, w.ts
            FROM markets m
            LEFT JOIN LATERAL (SELECT x.ts FROM market_snapshots x WHERE x.ticker = m.ticker
                               ORDER BY x.ts DESC LIMIT 1) s ON true
            LEFT JOIN LATERAL (SELECT x.volume FROM market_snapshots x WHERE x.ticker = m.ticker
                               AND x.volume IS NOT NULL ORDER BY x.ts DESC LIMIT 1) v ON true
            LEFT JOIN LATERAL (SELECT x.status FROM market_snapshots x WHERE x.ticker = m.ticker
                               AND x.status IS NOT NULL ORDER BY x.ts DESC LIMIT 1) st ON true
            LEFT JOIN LATERAL (SELECT x.ts FROM market_snapshots x WHERE x.ticker = m.ticker
                               AND x.source = 'websocket' ORDER BY x.ts DESC LIMIT 1) w ON true
            WHERE m.status NOT IN ('finalized', 'settled') OR m.updated_at > now() - :recent_s * interval '1 second'
            """
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(sql, {"recent_s": recent.total_seconds()})).all()
        for ticker, market_status, ts, volume, snap_status, stream_ts in rows:
            mark = MarketMark(stream_ts=stream_ts, rank=status_rank(snap_status), floor=status_rank(market_status))
            if ts is not None:
                mark.points.append(Point(ts, volume, mark.rank))
            self.marks[ticker] = mark
        return len(rows)

    # --------------------------------------------------------------------------------------------- the rule
    def check(self, row: SnapshotRow) -> str | None:
        """Why ``row`` must not be written (a reason), or None to write it; admitted rows move the mark."""
        mark = self.marks.setdefault(row.ticker, MarketMark())
        rank = status_rank(row.status)
        rest = row.source not in STREAM_SOURCES
        if rest and mark.head_ts is not None and row.ts <= mark.head_ts:
            reason: str | None = "older_than_recorded"  # a REST answer can only be appended
        else:
            reason = self._regression(mark, row, rank)
        if reason is None and rest:
            reason = self._rest(mark, row, rank)
        if reason is None:
            mark.add(row, rank, self.window)
        return reason

    def _regression(self, mark: MarketMark, row: SnapshotRow, rank: int | None) -> str | None:
        points = mark.points
        if not points or row.ts > points[-1].ts:
            # After every point (nearly every stream row): bounded below by the newest, above by nothing. Written
            # out, since scanning the window per frame was a measurable share of the recorder's ingest.
            vol_lo, vol_hi = mark.head_volume, None
            floor, top = mark.floor, mark.rank
            rank_lo = top if floor is None else floor if top is None else max(floor, top)
            rank_hi = None
        else:
            if len(points) >= self.window and row.ts < points[0].ts:
                return "late"
            vol_lo, vol_hi = mark.volume_bounds(row.ts)
            rank_lo, rank_hi = mark.rank_bounds(row.ts)
        if rank is not None:
            if rank_lo is not None and rank < rank_lo:
                return "status_regression"
            if rank_hi is not None and rank > rank_hi:
                return "late"
        if row.volume is not None:
            if vol_lo is not None and row.volume < vol_lo:
                return "volume_regression"
            if vol_hi is not None and row.volume > vol_hi:
                return "late"
        return None

    def _rest(self, mark: MarketMark, row: SnapshotRow, rank: int | None) -> str | None:  # noqa: PLR0911 - one per clause
        head = mark.head_ts
        if head is None:
            return None
        if rank is not None and (mark.rank is None or rank > mark.rank):
            return None  # a later status (or the series' first): news the stream does not carry
        if mark.head_values == _values(row):
            return "unchanged"
        # A REST row's ts is when the answer was made if the server said (Date − Age), else only its receipt,
        # and then the answer may be as old as a cache keeps one.
        fresh_after = row.ts if row.ts != row.received_at else row.received_at - self.rest_max_age
        if mark.stream_ts is not None and mark.stream_ts > fresh_after:
            return "stream_authoritative"
        if row.volume is not None and mark.head_volume is not None and row.volume > mark.head_volume:
            return None
        if head <= fresh_after:
            return None
        return "stale"

    # ------------------------------------------------------------------------------------------- the gate
    async def put(self, item: SinkItem) -> None:
        if isinstance(item, SnapshotRow):
            reason = self.check(item)
            if reason is not None:
                self._held(item, reason)
                return
        elif isinstance(item, MarketRow):
            item = self._market_row(item)
        await self._put(item)

    def _market_row(self, row: MarketRow) -> MarketRow:
        mark = self.marks.setdefault(row.ticker, MarketMark())
        rank = status_rank(row.status)
        known = max((r for r in (mark.floor, mark.rank) if r is not None), default=None)
        changes: dict[str, Any] = {}
        if rank is not None and known is not None and rank < known:
            changes["status"] = None
            self._count("market_status_regression")
        elif rank is not None:
            mark.floor = rank if mark.floor is None else max(mark.floor, rank)
        if row.volume is not None and mark.head_volume is not None and row.volume < mark.head_volume:
            changes["volume"] = None
            self._count("market_volume_regression")
        return row._replace(**changes) if changes else row

    def _held(self, row: SnapshotRow, reason: str) -> None:
        self._count(reason)
        if reason in ("stale", "stream_authoritative", "older_than_recorded") and self.on_held_back is not None:
            self.on_held_back(row.ticker)

    def _count(self, reason: str) -> None:
        self.held_back[reason] += 1
        self._unlogged[reason] += 1
        self.metrics.snapshots_held_back.labels(reason).inc()
        now = time.monotonic()
        if now - self._logged_at >= self.summary_seconds:
            self.log_summary(now)

    def log_summary(self, now: float | None = None) -> None:
        """One line for everything held back since the last one (never a line per row)."""
        if self._unlogged:
            log.info("snapshots_held_back", **dict(self._unlogged), total=sum(self.held_back.values()))
            self._unlogged.clear()
        self._logged_at = time.monotonic() if now is None else now
