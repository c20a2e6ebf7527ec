"""What a new leader repairs before anything else: the time nobody recorded (DESIGN.md §5 "Coverage").

On every start and leadership change (:meth:`Resume.plan` reads the database once the first poll and the
stream run, telling this leadership's own rows apart by ``leader_since``; :meth:`Resume.run` repairs in the
background, among the gap repairer's tasks):

- the hole gets a ``feed_gaps`` row whose cause says what happened before this leader:
  ``outage`` (this instance led before and lost the lease, e.g. to a database outage), ``crash`` (the newest
  previous leader's heartbeat row still says ``leader``: it never stopped cleanly), ``failover`` (another
  instance led and stopped cleanly: a handover, or a stop and a restart), ``startup`` (no recorder ever ran here;
  written only if something is stored already, e.g. by ``backfill``: the first start on an empty database has
  nothing to repair). It starts at the earlier of the last stored trade and the previous leader's last heartbeat;
  a part before the repair horizon (``resume_max``) is a gap of its own, closed as unrepairable;
- every gap still open (neither repaired nor unrepairable, e.g. left by a crashed leader mid-repair) is adopted
  and ends in the same pass, or as unrepairable when it starts before the repair horizon (``horizon``, the
  trades of older windows are not read back);
- the markets "being tracked" come from the database, not from today's listing: every stored market whose status
  is not final, plus every market with trades or snapshots since the hole began, plus what the first poll found.
  So markets that closed, settled or left the open listing meanwhile get their trades, final state and result;
- their state is read in batches (``GET /markets?tickers=``); a ticker missing from the answer is asked for
  alone (``GET /markets/{ticker}``); one the exchange answers 404 for keeps its stored status, gets
  ``raw._recorder.not_found_at`` / ``reason`` (so it is not tracked again) and a per-market ``feed_gaps`` row
  closed as unrepairable with that reason;
- every trade since the hole began (minus a margin) is read back per market (``source="backfill"``;
  ``trade_id`` is the key, so what the previous leader did store costs nothing).

Markets still open afterwards are handed to the poll loop (``Poller.tracked``), which keeps fetching them until
they are finalized; a tracked market the exchange forgets while recording comes back here through
``Poller.on_gone`` (:meth:`Resume.vanished`, cause ``other``).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kalshi_analytics.kalshi.domain import Disconnected
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.kalshi.status import STATUS_RANK, MarketStatus, status_rank
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.gaps import GapRepairer
from kalshi_analytics.recorder.poll import FINAL_STATUSES, Poller
from kalshi_analytics.recorder.rows import GapOpened, MarketRow, snapshot_from_market

log = get_logger(__name__)

NOT_FOUND_KEY = "_recorder"  # our own key inside markets.raw (the exchange payload has no leading underscore)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Previous:
    """Who wrote before this leader, as the heartbeat rows tell it."""

    cause: str  # outage | crash | failover | startup
    instance_id: str | None = None
    last_seen: datetime | None = None  # its last heartbeat


@dataclass
class Plan:
    previous: Previous
    hole_start: datetime  # when nobody recorded any more (as far as the database tells)
    since: datetime  # trades are read from here (minus the margin): hole_start, but not before the horizon
    tickers: list[str]
    stale_gaps: list[GapOpened]  # open gaps older than the horizon: closed as unrepairable
    adopted_gaps: list[GapOpened]  # open gaps repaired by this pass


async def previous_writer(conn: AsyncConnection, instance_id: str, led_before: bool) -> Previous:
    """The cause of the hole before this leadership (see the module docstring)."""
    if led_before:
        return Previous("outage", instance_id)
    row = (
        await conn.execute(
            text(
                "SELECT instance_id, role, heartbeat_at FROM recorder_heartbeats "
                "WHERE instance_id <> :me AND role IN ('leader', 'deposed', 'stopped') "
                "ORDER BY heartbeat_at DESC LIMIT 1"
            ),
            {"me": instance_id},
        )
    ).first()
    if row is None:
        return Previous("startup")
    # This instance holds the lock now, so a row still saying "leader" — or "deposed", which the lease marks a
    # leader whose deadline passed — is a writer that died (or froze) without stopping.
    return Previous("failover" if row.role == "stopped" else "crash", row.instance_id, row.heartbeat_at)


# Gaps this leadership detected itself (its stream starts before the resume) have repairs of their own.
OPEN_GAPS_SQL = text(
    "SELECT key, detected_at, channel, sid, market_ticker, cause, seq_expected, seq_received, gap_start, details "
    "FROM feed_gaps WHERE repaired_at IS NULL AND unrepairable_reason IS NULL AND detected_at < :mine "
    "ORDER BY gap_start"
)

TRACKED_SQL = text(
    f"""
    SELECT m.ticker FROM markets m
    WHERE m.raw #>> '{{{NOT_FOUND_KEY},not_found_at}}' IS NULL
      AND (m.status NOT IN ({", ".join(f"'{s}'" for s in sorted(FINAL_STATUSES))})
           OR EXISTS (SELECT 1 FROM trades t WHERE t.ticker = m.ticker AND t.ts >= :since)
           OR EXISTS (SELECT 1 FROM market_snapshots s WHERE s.ticker = m.ticker AND s.ts >= :since))
    ORDER BY m.ticker
    """
)


class Resume:
    """Plans and runs the repair of the time before this leadership."""

    def __init__(
        self,
        engine: AsyncEngine,
        rest: KalshiRestClient,
        poller: Poller,
        gaps: GapRepairer,
        *,
        horizon: timedelta = timedelta(hours=6),
    ) -> None:
        self.engine = engine
        self.rest = rest
        self.poller = poller
        self.gaps = gaps
        self.horizon = horizon

    async def plan(self, instance_id: str, led_before: bool, leader_since: datetime | None = None) -> Plan | None:
        """Read what needs repairing; None when there is nothing (the first start on an empty database).

        ``leader_since``: when this leadership began; trades this leader's stream already stored do not count
        as "the last trade before the hole"."""
        now = _now()
        floor = now - self.horizon
        async with self.engine.connect() as conn:
            previous = await previous_writer(conn, instance_id, led_before)
            last_trade = (
                await conn.execute(text("SELECT max(ts) FROM trades WHERE ts < :t"), {"t": leader_since or now})
            ).scalar_one_or_none()
            open_rows = (await conn.execute(OPEN_GAPS_SQL, {"mine": leader_since or now})).all()
            # A crashed leader may have held trades it never committed, older than its last heartbeat but newer
            # than the last stored trade: start at the earlier of the two.
            marks = [t for t in (last_trade, previous.last_seen) if t is not None]
            hole_start = min(marks) if marks else floor
            since = max(floor, hole_start)
            open_gaps = [GapOpened(*r) for r in open_rows]
            adopted = [g for g in open_gaps if g.gap_start >= floor]
            if adopted:
                since = min(since, *(g.gap_start for g in adopted))
            tracked = [r.ticker for r in await conn.execute(TRACKED_SQL, {"since": since})]
        if previous.cause == "startup" and not open_gaps:
            # No recorder ever wrote here: nothing was missed (history from before is `backfill`'s job). The
            # markets the first poll just stored must not turn this into a 6-hour read-back of every market.
            return None
        tickers = sorted(set(tracked) | set(self.poller.tickers))
        stale = [g for g in open_gaps if g.gap_start < floor]
        return Plan(previous, min(hole_start, since), since, tickers, stale, adopted)

    async def open(self, plan: Plan) -> GapOpened:
        """The ``feed_gaps`` row of the hole (written at once: the key is ours)."""
        p = plan.previous
        details: dict[str, Any] = {"markets": len(plan.tickers), "adopted_gaps": len(plan.adopted_gaps)}
        if p.instance_id is not None:
            details["previous_instance"] = p.instance_id
        if p.last_seen is not None:
            details["previous_heartbeat_at"] = p.last_seen.isoformat()
        self.gaps.stats.opened += len(plan.adopted_gaps)
        return await self.gaps.open(
            Disconnected(at=_now(), reason=f"recorder {p.cause}: nobody recorded since {plan.since.isoformat()}"),
            gap_start=plan.since,
            cause=p.cause,
            details=details,
        )

    def start(self, plan: Plan, gap: GapOpened) -> asyncio.Task[None]:
        """Repair in the background, among the gap repairer's tasks."""
        return self.gaps.spawn(self.run(plan, gap), name=f"resume-{gap.key}")

    async def run(self, plan: Plan, gap: GapOpened) -> None:
        backfill_hint = "not read back (kalshi-analytics backfill can)"
        if plan.stale_gaps:
            await self.gaps.give_up(
                [g.key for g in plan.stale_gaps],
                f"older than the repair horizon ({self.horizon}): re-checked by a new leader, {backfill_hint}",
            )
        if plan.hole_start < plan.since:
            # The part of the hole before the horizon is said so, not silently folded into a "repaired" gap.
            early = await self._market_gap(gap, None, plan.hole_start)
            await self.gaps.give_up(
                [early.key],
                f"before the repair horizon ({self.horizon}): {plan.hole_start.isoformat()} to "
                f"{plan.since.isoformat()} {backfill_hint}",
                gap_end=plan.since,
            )
        keys = [gap.key, *(g.key for g in plan.adopted_gaps)]
        last_error: BaseException | None = None
        for attempt in range(1, self.gaps.max_attempts + 1):
            try:
                found, gone = await self._state(plan)
                n_trades = await self.gaps.read_back_trades(plan.tickers, plan.since - self.gaps.margin)
                break
            except asyncio.CancelledError:
                raise  # stays open: the next leader adopts it
            except Exception as exc:
                last_error = exc
                log.warning("recorder_resume_failed", attempt=attempt, error=repr(exc)[:300])
                await asyncio.sleep(min(30.0, self.gaps.retry_seconds * attempt))
        else:
            await self.gaps.give_up(keys, f"resume failed {self.gaps.max_attempts} times: {last_error!r}"[:500])
            return
        await self.vanished(gone, gap)
        details = {"state_rows": found, "not_found": len(gone), "trades_read": n_trades, "since": plan.since}
        await self.gaps.finish(
            keys,
            method="rest_state+rest_trades",
            details={"markets": len(plan.tickers), **details},
            markets=len(plan.tickers),
            trades=n_trades,
        )

    async def _state(self, plan: Plan) -> tuple[int, list[str]]:
        """Current state of every tracked market → ``markets`` + a ``backfill`` snapshot; returns how many were
        found and the tickers the exchange does not know (any more)."""
        markets, gone = await self.poller.fetch_known(plan.tickers)
        received = _now()
        for m in markets:
            await self.gaps.put(await self.poller.catalog.market_row(m))
            await self.gaps.put(snapshot_from_market(m, received, received, "backfill"))
            if str(m.status or "") not in FINAL_STATUSES:
                self.poller.tracked.add(m.ticker)  # closed/determined: the poll loop follows it to the end
        return len(markets), gone

    async def vanished(self, tickers: list[str], gap: GapOpened | None = None) -> None:
        """Markets the exchange answers 404 for (a restarted simulator lists a new universe; Kalshi purges old
        markets): one stored as open is marked ``closed`` — not finalized: no result was ever given — the row says
        why in ``raw._recorder`` (and is no longer tracked), and a gap of that market is closed as unrepairable.
        ``gap``: the resume gap they were found in; None = found by the poll loop."""
        now = _now()
        for ticker in tickers:
            reason = f"the exchange answers 404 for GET /markets/{ticker}: its final state and result are unknown"
            async with self.engine.connect() as conn:
                stored = (
                    await conn.execute(
                        text("SELECT raw, status, close_time FROM markets WHERE ticker = :t"), {"t": ticker}
                    )
                ).first()
            flagged = dict(stored.raw or {}) if stored is not None else {}
            flagged[NOT_FOUND_KEY] = {"not_found_at": now.isoformat(), "reason": reason}
            rank = status_rank(stored.status) if stored is not None else None
            if stored is not None and rank is not None and rank < STATUS_RANK[MarketStatus.CLOSED]:  # still open
                close_time = now if stored.close_time is None or stored.close_time > now else None
                await self.gaps.put(MarketRow(ticker, status="closed", close_time=close_time, raw=flagged))
            else:
                await self.gaps.put(MarketRow(ticker, raw=flagged))
            start = gap.gap_start if gap is not None else (self.poller.stats.last_poll_at or now)
            row = await self._market_gap(gap, ticker, start)
            await self.gaps.give_up([row.key], reason)
        if tickers:
            log.warning(
                "recorder_markets_vanished", markets=len(tickers), examples=tickers[:5], why="404 from the exchange"
            )

    async def _market_gap(self, gap: GapOpened | None, ticker: str | None, start: datetime) -> GapOpened:
        """A gap row next to the resume gap ``gap`` (same cause), for one market or an earlier stretch."""
        key = uuid.uuid4().hex
        row = GapOpened(
            key=key,
            detected_at=_now(),
            channel="all" if gap is None else gap.channel,
            sid=None,
            market_ticker=ticker,
            cause="other" if gap is None else gap.cause,
            seq_expected=None,
            seq_received=None,
            gap_start=start,
            details=None if gap is None else {"resume_gap": gap.key},
        )
        await self.gaps.put(row)
        self.gaps.stats.opened += 1
        return row
