"""The live runner: one leader (others wait) advancing every running paper session with the recorder's commits.

It never talks to the exchange. It follows the event journal (:mod:`kalshi_analytics.events`): woken by the
recorder's commit notification, it reads the journal after its high-water mark — snapshots joined to their stored
rows with the backtest loader's own expressions, market status changes, feed gaps opening and closing — and
applies them to each session (:class:`~.session.SessionRun`: the backtest's feed and trading core). Then, in ONE
transaction fenced by its lease, it stores every session's new fills (keyed by the snapshot that caused them),
positions, equity points, events, account and high-water mark, and journals paper events for the live stream.
A crash loses only what was not committed; a restart (or a standby taking over) finds each session exactly at
its last commit, rebuilds the strategy's views from the recorded data without trading through the gap, records
the downtime, and trades on from the present.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import events, notifications
from kalshi_analytics.backtests.data import PRICE_COLUMNS, MarketFilter, float_sql, load_dataset, load_markets
from kalshi_analytics.backtests.service import resolve
from kalshi_analytics.db import locks
from kalshi_analytics.db.engine import driver_in_transaction, libpq_url
from kalshi_analytics.live import service
from kalshi_analytics.live.metrics import LiveMetrics
from kalshi_analytics.live.schemas import PaperSessionCreate
from kalshi_analytics.live.session import SessionRun, from_us, quoted, to_us
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.leader import LeaderElection, LeadershipLost
from kalshi_analytics.recorder.lease import LIVE_RUNNER
from kalshi_analytics.strategies.base import FIELDS
from kalshi_analytics.trading.portfolio import SIDES

log = get_logger(__name__)

#: The live runner's advisory lock key ("KALSHI" then 0002; the recorder's is 0001).
LOCK_KEY = locks.LIVE_RUNNER_LEADER
KINDS = [
    events.EventKind.SNAPSHOT.value,
    events.EventKind.MARKET_STATUS.value,
    events.EventKind.GAP_OPENED.value,
    events.EventKind.GAP_REPAIRED.value,
]
_CLOSE = FIELDS.index("close_time")
_NAMES = ("ts", *PRICE_COLUMNS)


def read_sql() -> str:
    """Journal events ``$1 < id <= $2`` of kinds ``$3`` about tickers ``$4`` (or no market), first ``$5`` in id
    order; snapshots carry their stored row's fields as the backtest loads them.

    The events are chosen (and limited) before their rows are joined, and only the batches that overlap the ids
    asked for are unnested: a read costs what it returns, not the journal after ``$1`` (joining first made a
    catch-up of N events cost O(N²/chunk))."""
    cols = ", ".join(f"{float_sql(c)} AS {c}" for c in PRICE_COLUMNS)
    return f"""
SELECT e.id, e.kind, e.ticker, e.ts, e.source, {cols}
FROM (
    SELECT b.first_id + u.ord - 1 AS id, u.kind, u.ticker, u.ts, u.source
    FROM stream_batches b
    CROSS JOIN LATERAL unnest(b.kinds, b.tickers, b.ts, b.sources) WITH ORDINALITY AS u(kind, ticker, ts, source, ord)
    WHERE b.last_id > $1
      AND b.last_id <= coalesce((SELECT min(h.last_id) FROM stream_batches h WHERE h.last_id >= $2), $2)
      AND b.first_id <= $2
      AND b.first_id + u.ord - 1 > $1 AND b.first_id + u.ord - 1 <= $2
      AND u.kind = ANY($3::text[]) AND (u.ticker IS NULL OR u.ticker = ANY($4::text[]))
    ORDER BY 1 LIMIT $5
) e
LEFT JOIN market_snapshots s ON e.kind = 'snapshot' AND s.ticker = e.ticker AND s.ts = e.ts AND s.source = e.source
ORDER BY e.id
"""


_READ = read_sql()
_OPEN_GAPS = """
SELECT coalesce(market_ticker, '') AS ticker, min(gap_start) AS since FROM feed_gaps
WHERE repaired_at IS NULL AND unrepairable_reason IS NULL GROUP BY 1
"""


# The oldest event still journaled (by the primary key: batches are pruned oldest first); None when none is.
_OLDEST = "SELECT first_id FROM stream_batches ORDER BY last_id LIMIT 1"


def missed_journal(cursor: int, head: int, oldest: int | None) -> bool:
    """Whether events after ``cursor`` (up to ``head``) are gone from the journal: some were handed out, and the
    oldest still kept comes after the next one (or none is kept)."""
    return head > cursor and (oldest is None or oldest > cursor + 1)


class LiveRunner:
    """Run with :meth:`run` (standby until it leads, then leads until cancelled)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        instance_id: str | None = None,
        lock_key: int = LOCK_KEY,
        chunk: int = 5_000,
        idle_wait: float = 0.5,
        refresh_seconds: float = 1.0,
        lease_seconds: float = 10.0,
        takeover_grace_seconds: float = 3.0,
        log_every_seconds: float = 10.0,
        metrics: LiveMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics if metrics is not None else LiveMetrics()
        self.chunk = chunk
        self.idle_wait = idle_wait
        self.refresh_seconds = refresh_seconds
        self.log_every = log_every_seconds
        self.sessions: dict[uuid.UUID, SessionRun] = {}
        self.election = LeaderElection(
            engine,
            lock_key=lock_key,
            instance_id=instance_id,
            lease_seconds=lease_seconds,
            takeover_grace_seconds=takeover_grace_seconds,
            info=self.info,
            tables=LIVE_RUNNER,
            name="live_runner",
        )
        self.applied = 0  # journal events applied (to any session) since start
        self.fills = 0
        self.commits = 0
        self._last_refresh = 0.0
        self._last_log = time.monotonic()
        self._logged_applied = 0
        self._settled_before: dict[uuid.UUID, set[str]] = {}
        self._listener: Any = None
        self._last_failure_log = -1e9
        self.ready = asyncio.Event()  # set once leading with every running session loaded

    def info(self) -> Mapping[str, Any]:
        return {
            "sessions": len(self.sessions),
            "events_applied": self.applied,
            "fills": self.fills,
            "commits": self.commits,
        }

    # ----------------------------------------------------------------------------------------------- lifecycle
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Wait as standby, lead when the lease is ours, back to standby if it is lost; until ``stop`` is set."""
        stop = stop if stop is not None else asyncio.Event()
        async with self.election:
            body = asyncio.create_task(self._serve(stop), name="live-runner")
            waiter = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({body, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if not body.done():
                    if self.election.is_leader:  # a leader ends its step and commit first
                        await asyncio.wait({body}, timeout=10)
                    body.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await body
                else:
                    body.result()
            finally:
                waiter.cancel()
                body.cancel()

    async def _serve(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self.election.leadership():
                    await self._lead(stop)
                return
            except LeadershipLost as exc:
                log.warning("live_runner_leadership_lost", reason=str(exc))
                self.sessions.clear()
                self.ready.clear()

    async def _lead(self, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        log.info("live_runner_leading", instance_id=self.election.instance_id)
        self.metrics.leader.set(1)
        try:
            await self._loop(stop, wake)
        finally:
            self.metrics.leader.set(0)
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    await self._listener.close()
                self._listener = None

    async def _loop(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        down_since: float | None = None
        while not stop.is_set():
            try:
                if self._listener is None or self._listener.is_closed():
                    self._listener = await asyncpg.connect(libpq_url(self.engine.url))
                    await self._listener.add_listener(notifications.CHANNEL, lambda *_: wake.set())
                await self.step()
                if down_since is not None:
                    log.info("live_runner_database_back", after_seconds=round(time.monotonic() - down_since, 1))
                    down_since = None
                self.ready.set()
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, DBAPIError, TimeoutError) as exc:
                if down_since is None:  # one line per outage; what is not committed waits in memory
                    down_since = time.monotonic()
                    self.metrics.outages.inc()
                    log.warning("live_runner_database_unavailable", error=repr(exc))
                self._listener = None
                await asyncio.sleep(1.0)
                continue
            except Exception:  # a defect, not an outage: said (once a minute at most), retried, never a dead runner
                self.metrics.step_failures.inc()
                now = time.monotonic()
                if now - self._last_failure_log >= 60:
                    self._last_failure_log = now
                    log.exception("live_runner_step_failed")
                await asyncio.sleep(1.0)
                continue
            self._log_progress()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.idle_wait)
            wake.clear()

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_log < self.log_every:
            return
        rate = (self.applied - self._logged_applied) / (now - self._last_log)
        self._last_log, self._logged_applied = now, self.applied
        log.info(
            "live_runner_progress",
            sessions=len(self.sessions),
            events_per_second=round(rate, 1),
            fills=self.fills,
            stale_sessions=sum(1 for s in self.sessions.values() if s.stale_since),
        )

    # -------------------------------------------------------------------------------------------- sessions
    async def refresh_sessions(self) -> None:
        """Take on sessions started (or resumed) since, let go of those stopped."""
        async with self.engine.connect() as conn:
            pg = await driver_in_transaction(conn)
            rows = await pg.fetch("SELECT * FROM paper_sessions WHERE status = 'running' ORDER BY created_at")
            oldest = await pg.fetchval(_OLDEST)
            await conn.rollback()
        running = {r["id"] for r in rows}
        for sid in [s for s in self.sessions if s not in running]:
            del self.sessions[sid]
            log.info("live_session_released", session_id=str(sid))
        for r in rows:
            if r["id"] not in self.sessions:
                await self._take(r, oldest)
        self._last_refresh = time.monotonic()

    async def _take(self, row: Any, oldest_journaled: int | None) -> None:
        req = service.backtest_request(row, row["started_at"], row["started_at"] + timedelta(days=1))
        strategy, params = resolve(req)
        cfg = req.engine_config()
        async with self.engine.connect() as conn:
            pg = await driver_in_transaction(conn)
            markets = await load_markets(pg, MarketFilter(tickers=list(row["tickers"])))
            fills = await pg.fetch(
                "SELECT ticker, side, action, price, count, fee, snapshot_ts, snapshot_source, signal "
                "FROM paper_fills WHERE session_id = $1 ORDER BY id",
                row["id"],
            )
            settled = await pg.fetch(
                "SELECT DISTINCT ticker FROM paper_session_events WHERE session_id = $1 AND kind = 'settled'",
                row["id"],
            )
            head = await events.head(pg)
            now = await pg.fetchval("SELECT clock_timestamp()")
            await conn.rollback()
        run = SessionRun(row, strategy, params, cfg, markets)
        # Missed: the runner ran it before (its views are gone with that process), or the journal no longer
        # holds what it has not applied yet.
        missed = row["last_active_at"] is not None or missed_journal(row["last_event_id"], head, oldest_journaled)
        if missed and row["restart_policy"] == "reset":
            await self._reset(row, now)
            return
        if missed:
            ds = await load_dataset(
                self.engine, row["started_at"], now + timedelta(days=3650), MarketFilter(tickers=run.tickers)
            )
            rebuilt = run.rebuild(ds, to_us(now))
            run.cursor = head
            since = row["last_active_at"] or row["started_at"]
            run.pending.event(
                since,
                "downtime",
                None,
                now,
                note="the runner was not running: nothing traded; the strategy's state was rebuilt from the "
                "recorded data, and it trades on from the present",
                snapshots_rebuilt=rebuilt,
                seconds=round((now - since).total_seconds(), 3),
            )
        run.schedule_known()
        run.restore(fills, {k: int(v) for k, v in (row["skipped"] or {}).items()})
        self._settled_before[run.id] = {r["ticker"] for r in settled}
        stored = row["cash"]
        if run.core.cash != stored and not run.core.portfolio.held:
            log.warning(
                "live_session_cash_mismatch", session_id=str(run.id), stored=str(stored), rebuilt=str(run.core.cash)
            )
        run.pending.cursor = run.cursor
        self.sessions[run.id] = run
        log.info(
            "live_session_taken",
            session_id=str(run.id),
            strategy=row["strategy_name"],
            markets=len(run.tickers),
            fills=len(fills),
            rebuilt=missed,
        )

    async def _reset(self, row: Any, now: datetime) -> None:
        """Restart policy ``reset``: stop the session as it stands and start a fresh one with its settings."""
        cfg = row["config"]
        body = PaperSessionCreate(
            strategy=row["strategy_name"],
            strategy_version=row["strategy_version"],
            params=row["params"],
            market_filter=MarketFilter(tickers=list(row["tickers"])),
            name=row["name"],
            initial_capital=Decimal(cfg["initial_capital"]),
            max_position=Decimal(cfg["max_position"]),
            contract_step=Decimal(cfg["contract_step"]),
            fill_latency_seconds=cfg["fill_latency_seconds"],
            unknown_size_cap=Decimal(cfg["unknown_size_cap"]),
            trade_quotes=cfg["trade_quotes"],
            equity_interval_seconds=cfg["equity_interval_seconds"],
            restart_policy="reset",
        )
        await service.stop_session(self.engine, row["id"], "the runner was down; restart policy reset")
        new = await service.create_session(self.engine, body, reset_of=row["id"])
        log.info("live_session_reset", session_id=str(row["id"]), new_session_id=str(new), at=now.isoformat())

    # ------------------------------------------------------------------------------------------------ steps
    async def step(self) -> int:
        """Apply what was committed since the last step to every running session and commit their changes;
        returns the journal events read."""
        if time.monotonic() - self._last_refresh >= self.refresh_seconds:
            await self.refresh_sessions()
        if not self.sessions:
            return 0
        tickers = sorted({t for s in self.sessions.values() for t in s.tickers})
        read = 0
        async with self.engine.connect() as conn:
            pg = await driver_in_transaction(conn)
            await conn.commit()
            head = await events.head(pg)
            await self._release_behind(pg, head)
            if not self.sessions:
                return 0
            cursor = min(s.cursor for s in self.sessions.values())
            while cursor < head:
                rows = await self._read(pg, cursor, head, tickers)
                read += len(rows)
                await self._apply(pg, rows)
                cursor = rows[-1]["id"] if len(rows) == self.chunk else head
                for s in self.sessions.values():
                    s.pending.cursor = max(s.cursor, cursor)
                await self._commit(pg)
            now_us = to_us(await pg.fetchval("SELECT clock_timestamp()"))
            for s in self.sessions.values():
                s.settle_due(now_us)
            if any(s.pending.events or s.pending.touched for s in self.sessions.values()):
                await self._commit(pg)
        return read

    async def _release_behind(self, pg: Any, head: int) -> None:
        """Sessions whose next events are no longer journaled (the journal keeps minutes, and the runner fell
        that far behind) cannot follow it: let go of them, so that the next refresh takes them again as after a
        restart — rebuilt from the tables without trading through what was missed, the gap a downtime event."""
        oldest = await pg.fetchval(_OLDEST)
        behind = [s for s in self.sessions.values() if missed_journal(s.cursor, head, oldest)]
        if not behind:
            return
        await self._commit(pg)  # what they did up to the gap is theirs
        for s in behind:
            self.sessions.pop(s.id, None)
            log.warning("live_session_fell_behind_the_journal", session_id=str(s.id), cursor=s.cursor, oldest=oldest)
        self._last_refresh = 0.0  # take them again at once

    async def _read(self, pg: Any, cursor: int, head: int, tickers: list[str]) -> list[Any]:
        """The first ``chunk`` events of :data:`KINDS` about ``tickers`` after ``cursor`` (up to ``head``), read a
        window of at most ``chunk`` journal ids at a time (each read then costs at most a chunk)."""
        rows: list[Any] = []
        lo = cursor
        while lo < head and len(rows) < self.chunk:
            hi = min(head, lo + self.chunk)
            rows += await pg.fetch(_READ, lo, hi, KINDS, tickers, self.chunk - len(rows))
            lo = hi
        return rows

    async def _apply(self, pg: Any, rows: Sequence[Any]) -> None:
        n = len(rows)
        if not n:
            return
        columns: dict[str, Any] = {
            "ts_us": np.array([to_us(r["ts"]) if r["ts"] is not None else 0 for r in rows], np.int64),
            "source": np.array([r["source"] or "" for r in rows], object),
        }
        columns["ts"] = columns["ts_us"] / 1e6
        ts_list: list[int] = columns["ts_us"].tolist()
        for c in PRICE_COLUMNS:
            columns[c] = np.array([r[c] for r in rows], np.float64)
        columns["close_time"] = np.full(n, np.nan)
        quoted_cols, by_trade = quoted(columns)
        tables = {
            False: (columns, None, np.column_stack([columns[f] for f in FIELDS])),
            True: (quoted_cols, by_trade, np.column_stack([quoted_cols[f] for f in FIELDS])),
        }
        for s in self.sessions.values():
            cols, mask, _ = tables[s.trade_quotes]
            s.quotes.load(cols, mask)
        holders: dict[str, list[SessionRun]] = {}
        for s in self.sessions.values():
            for t in s.tickers:
                holders.setdefault(t, []).append(s)
        i = 0
        while i < n:
            kind = rows[i]["kind"]
            if kind != events.EventKind.SNAPSHOT:
                j = i
                while j < n and rows[j]["kind"] != events.EventKind.SNAPSHOT:
                    j += 1
                await self._facts(pg, rows[i:j], holders)
                i = j
                continue
            j = i
            while j < n and rows[j]["kind"] == events.EventKind.SNAPSHOT:
                j += 1
            applied = self._apply_snapshots(rows, i, j, ts_list, tables, holders)
            self.applied += applied
            self.metrics.events.inc(applied)
            i = j

    @staticmethod
    def _apply_snapshots(  # noqa: PLR0917 - one run of a chunk and what _apply prepared for it
        rows: Sequence[Any],
        i: int,
        j: int,
        ts_list: list[int],
        tables: Mapping[bool, tuple[Any, Any, np.ndarray]],
        holders: Mapping[str, list[SessionRun]],
    ) -> int:
        """Rows ``i:j`` (snapshots) to every session holding their market, in the backtest's order: time, then
        market (ticker), then source. Returns the applications."""
        ids = [r["id"] for r in rows[i:j]]
        tickers = [r["ticker"] for r in rows[i:j]]
        sources = [r["source"] for r in rows[i:j]]
        times = ts_list[i:j]
        applied = 0
        for o in sorted(range(j - i), key=lambda o: (times[o], tickers[o], sources[o])):
            g, event_id, ticker, ts_us = i + o, ids[o], tickers[o], times[o]
            for s in holders.get(ticker, ()):
                if event_id <= s.cursor or s.failure is not None:
                    continue
                k = s.index[ticker]
                values = tables[s.trade_quotes][2][g].copy()
                values[_CLOSE] = s.close_at(k, values[0])
                try:
                    s.apply(event_id, k, g, ts_us, sources[o], values)
                except Exception as exc:  # the strategy's own error (or ours): this session fails, not the runner
                    s.failure = f"{type(exc).__name__}: {exc}"[:2000]
                    log.exception("live_session_failed", session_id=str(s.id))
                    continue
                applied += 1
        return applied

    async def _facts(self, pg: Any, rows: Sequence[Any], holders: Mapping[str, list[SessionRun]]) -> None:
        """Market status changes (results, close times) and feed gaps, as they were committed."""
        changed = sorted({r["ticker"] for r in rows if r["kind"] == events.EventKind.MARKET_STATUS and r["ticker"]})
        if changed:
            for info in await load_markets(pg, MarketFilter(tickers=changed)):
                for s in holders.get(info.ticker, ()):
                    s.set_info(info)
        if any(r["kind"] in (events.EventKind.GAP_OPENED, events.EventKind.GAP_REPAIRED) for r in rows):
            gaps = {r["ticker"]: r["since"] for r in await pg.fetch(_OPEN_GAPS)}
            now = await pg.fetchval("SELECT clock_timestamp()")
            for s in self.sessions.values():
                s.set_stale(gaps, now)

    async def _commit(self, pg: Any) -> None:
        """Every session's pending changes and high-water mark in one fenced transaction."""
        changed = [s for s in self.sessions.values() if _dirty(s)]
        if not changed:
            return
        journal: list[events.NewEvent] = []
        async with pg.transaction():
            await self.election.fence(pg)
            still = {
                r["id"]
                for r in await pg.fetch(
                    "SELECT id FROM paper_sessions WHERE id = ANY($1::uuid[]) AND status = 'running' FOR UPDATE",
                    [s.id for s in changed],
                )
            }
            for s in changed:
                if s.id not in still:  # stopped meanwhile: what it did since is not its any more
                    self.sessions.pop(s.id, None)
                    continue
                journal += await self._store(pg, s)
            last = await events.append(pg, journal)
            if last is not None:
                await events.notify(pg, last)
        newest: int | None = None
        for s in changed:
            if s.failure is not None:
                self.sessions.pop(s.id, None)
            if s.id in still:
                n = len(s.new_trades())
                self.fills += n
                self.metrics.fills.inc(n)
                if s.pending.processed_us is not None:
                    newest = s.pending.processed_us if newest is None else max(newest, s.pending.processed_us)
                s.committed(s.pending.cursor if s.pending.cursor is not None else s.cursor)
        self.commits += 1
        self.metrics.commits.inc()
        if newest is not None:
            self.metrics.lag.observe(max(0.0, time.time() - newest / 1e6))
        self.metrics.sessions.set(len(self.sessions))
        self.metrics.stale_markets.set(sum(len(s.feed.stale) for s in self.sessions.values()))

    async def _store(self, pg: Any, s: SessionRun) -> list[events.NewEvent]:
        sid = s.id
        out: list[events.NewEvent] = []
        trades = s.new_trades()
        if trades:
            records = []
            for t, (event_id, seq, _k) in zip(trades, s.pending.causes, strict=True):
                k, side, buy, price, count, fee, ts_us, source, signal, cash = t
                records.append(
                    (
                        sid,
                        s.tickers[k],
                        SIDES[side],
                        "buy" if buy else "sell",
                        price,
                        count,
                        fee,
                        cash,
                        from_us(ts_us),
                        source,
                        seq,
                        json.dumps(signal) if signal else None,
                        event_id,
                    )
                )
                out.append(
                    events.NewEvent(
                        events.EventKind.PAPER_FILL,
                        None,
                        json.dumps(
                            {
                                "session_id": str(sid),
                                "ticker": s.tickers[k],
                                "side": SIDES[side],
                                "action": "buy" if buy else "sell",
                                "price": str(price),
                                "count": str(count),
                                "fee": str(fee),
                                "cash_after": str(cash),
                                "ts": from_us(ts_us).isoformat(),
                            }
                        ),
                    )
                )
            await pg.executemany(
                "INSERT INTO paper_fills (session_id, ticker, side, action, price, count, fee, cash_after, "
                "snapshot_ts, snapshot_source, seq, signal, event_id, committed_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, clock_timestamp()) "
                "ON CONFLICT (session_id, ticker, snapshot_ts, snapshot_source, seq) DO NOTHING",
                records,
            )
        moved = {s.tickers[t[0]] for t in trades} | {e[2] for e in s.pending.events if e[1] == "settled" and e[2]}
        at = from_us(s.processed_us) if s.processed_us is not None else datetime.now(UTC)
        positions = s.position_rows()
        if positions:
            await pg.executemany(
                "INSERT INTO paper_positions (session_id, ticker, side, contracts, avg_price, mark, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id, ticker, side) DO UPDATE SET "
                "contracts = EXCLUDED.contracts, avg_price = EXCLUDED.avg_price, mark = EXCLUDED.mark, "
                "updated_at = EXCLUDED.updated_at",
                [(sid, *p, at) for p in positions],
            )
            for ticker, side_name, c, avg, mark in positions:
                if ticker in moved:
                    out.append(
                        events.NewEvent(
                            events.EventKind.PAPER_POSITION,
                            None,
                            json.dumps(
                                {
                                    "session_id": str(sid),
                                    "ticker": ticker,
                                    "side": side_name,
                                    "contracts": str(c),
                                    "avg_price": None if avg is None else str(avg),
                                    "mark": None if mark is None else str(mark),
                                }
                            ),
                        )
                    )
        if s.pending.equity:
            await pg.executemany(
                "INSERT INTO paper_equity (session_id, ts, equity, cash) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (session_id, ts) DO NOTHING",
                [(sid, ts, eq, cash) for ts, eq, cash in s.pending.equity],
            )
            ts, eq, cash = s.pending.equity[-1]
            out.append(
                events.NewEvent(
                    events.EventKind.PAPER_EQUITY,
                    None,
                    json.dumps({"session_id": str(sid), "ts": ts.isoformat(), "equity": str(eq), "cash": str(cash)}),
                )
            )
        seen = self._settled_before.setdefault(sid, set())
        for at_ev, kind, about, until, details in s.pending.events:
            if kind == "settled":
                if about in seen:
                    continue
                seen.add(about or "")
            out.append(
                await service.add_event(pg, sid, at_ev, kind, ticker=about, until=until, details=details, publish=False)
            )
        if s.failure is not None:
            at = await pg.fetchval(
                "UPDATE paper_sessions SET status = 'failed', stopped_at = clock_timestamp(), stop_reason = $2 "
                "WHERE id = $1 RETURNING stopped_at",
                sid,
                s.failure,
            )
            details = {"error": s.failure, "note": "the session stopped: nothing trades after this error"}
            out.append(await service.add_event(pg, sid, at, "failed", details=details, publish=False))
        pf = s.core.portfolio
        await pg.execute(
            "UPDATE paper_sessions SET cash = $2, realised_pnl = $3, fees_paid = $4, num_fills = $5, "
            "skipped = $6::jsonb, last_event_id = $7, processed_until = coalesce($8, processed_until), "
            "last_active_at = clock_timestamp(), runner = $9 WHERE id = $1",
            sid,
            pf.cash,
            pf.realised,
            pf.fees,
            s.fills_total + len(trades),
            json.dumps(s.core.skipped),
            s.pending.cursor if s.pending.cursor is not None else s.cursor,
            from_us(s.processed_us) if s.processed_us is not None else None,
            self.election.instance_id,
        )
        return out


def _dirty(s: SessionRun) -> bool:
    p = s.pending
    moved = p.cursor is not None and p.cursor != s.cursor
    return bool(p.touched or p.events or p.equity or s.new_trades() or moved or s.failure is not None)


async def run_runner(engine: AsyncEngine, stop: asyncio.Event | None = None, **kw: Any) -> None:
    """Run a live runner until ``stop`` is set (or forever)."""
    runner = LiveRunner(engine, **kw)
    await runner.run(stop)
