"""The sink: the recorder's one writer into PostgreSQL.

The loops ``put`` rows (:mod:`kalshi_analytics.recorder.rows`) into a bounded queue; one drain task takes up to
``batch_max_rows`` of them, or whatever arrived within ``batch_max_seconds``, and writes them in ONE unit of
work: markets upsert, snapshots (COPY, idempotent), the 1-minute candles those snapshots touch, trades, order
books, gaps, and a ``NOTIFY market_updates`` that fires exactly on commit.

Nothing is dropped: when PostgreSQL is unreachable the batch is kept, in order, and retried with capped,
jittered exponential backoff; meanwhile the queue fills and ``put`` blocks (backpressure, bounded memory).
A batch that fails for a non-transient reason (bad data) is bisected until the offending rows are isolated;
those are logged with their content and counted as rejected, and the rest is written.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import notifications
from kalshi_analytics.logs import get_logger
from kalshi_analytics.markets.pricing import DEFAULT_MAX_SPREAD
from kalshi_analytics.recorder.bulk import SnapshotRow, write_snapshots_returning_new
from kalshi_analytics.recorder.candles import (
    UPSERT_CANDLES_SQL,
    aggregate_candles,
    candle_columns,
)
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.rows import (
    MARKET_COLUMNS,
    TRADE_COLUMNS,
    GapOpened,
    GapRepaired,
    MarketRow,
    OrderbookRow,
    SinkItem,
    TradeRow,
)

log = get_logger(__name__)

LAG_SAMPLES_PER_BATCH = 500

TABLE_OF: dict[type, str] = {
    SnapshotRow: "market_snapshots",
    TradeRow: "trades",
    OrderbookRow: "orderbook_snapshots",
    MarketRow: "markets",
    GapOpened: "feed_gaps",
    GapRepaired: "feed_gaps",
}

# Fence: called inside each batch's transaction with the asyncpg connection; raises to refuse the write
# (e.g. :meth:`LeaderElection.fence`, so a deposed leader never commits).
Fence = Callable[[Any], Awaitable[None]]


class SinkClosedError(RuntimeError):
    """``put`` on a sink that is not running (never started, closed, or stopped by a fatal error)."""


# ------------------------------------------------------------------------------------------------ error classes
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "40001", "40P01", "55P03")


def is_transient(exc: BaseException) -> bool:
    """Whether a write failure is about reaching the database (retry) rather than about the data (isolate)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError | TimeoutError | ConnectionError | sa_exc.TimeoutError):
            return True
        if isinstance(e, asyncpg.exceptions.ConnectionDoesNotExistError | asyncpg.exceptions.PostgresConnectionError):
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, asyncpg.exceptions.InterfaceError) and "connection" in str(e).lower():
            return True  # "connection is closed", "cannot ... connection was lost"
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(state, str) and state.startswith(_TRANSIENT_SQLSTATE_PREFIXES):
            return True
        stack.extend([e.__cause__, e.__context__, getattr(e, "orig", None)])
    return False


# ------------------------------------------------------------------------------------------------------- stats
@dataclass
class SinkStats:
    """Counters since the sink started (``Sink.stats`` returns a copy)."""

    put: int = 0  # items accepted into the queue
    done: int = 0  # items committed or rejected
    batches: int = 0
    new: dict[str, int] = field(default_factory=dict)  # new rows by table
    duplicates: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    candles_upserted: int = 0
    markets_unknown: int = 0  # partial market rows for tickers not stored yet
    repairs_unmatched: int = 0  # GapRepaired whose key was never stored
    notifications: int = 0
    retries: int = 0
    outages: int = 0
    backpressure_waits: int = 0
    queue_depth: int = 0
    db_down_since: datetime | None = None
    last_commit_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("db_down_since", "last_commit_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


@dataclass
class _Outcome:
    new: dict[str, int]
    duplicates: dict[str, int]
    candles: int
    markets_unknown: int
    repairs_unmatched: int
    notifications: int
    lags: list[tuple[str, datetime]]  # (kind, exchange ts) of new snapshots/trades


def _bump(d: dict[str, int], key: str, n: int) -> None:
    if n:
        d[key] = d.get(key, 0) + n


# -------------------------------------------------------------------------------------------------- SQL pieces
def _unnest(types: Sequence[str]) -> str:
    return ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))


_MARKET_TYPES = {
    "open_time": "timestamptz",
    "close_time": "timestamptz",
    "expected_expiration_time": "timestamptz",
    "settled_at": "timestamptz",
    "settlement_value": "numeric",
    "notional_value": "numeric",
    "volume": "numeric",
    "open_interest": "numeric",
    "price_ranges": "jsonb",
    "raw": "jsonb",
}
_MARKET_COL_TYPES = [_MARKET_TYPES.get(c, "text") for c in MARKET_COLUMNS]
_MARKET_COLS = ", ".join(MARKET_COLUMNS)
_MARKET_KEEP = ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, m.{c})" for c in MARKET_COLUMNS[1:])
UPSERT_MARKETS_SQL = (
    f"INSERT INTO markets AS m ({_MARKET_COLS}) SELECT * FROM unnest({_unnest(_MARKET_COL_TYPES)}) "
    f"ON CONFLICT (ticker) DO UPDATE SET {_MARKET_KEEP}, updated_at = now()"
)
UPDATE_MARKETS_SQL = (
    f"UPDATE markets AS m SET {', '.join(f'{c} = COALESCE(u.{c}, m.{c})' for c in MARKET_COLUMNS[1:])}, "
    f"updated_at = now() FROM unnest({_unnest(_MARKET_COL_TYPES)}) AS u({_MARKET_COLS}) "
    "WHERE m.ticker = u.ticker RETURNING m.ticker"
)

_TRADE_COLS = TRADE_COLUMNS
_TRADE_STAGING = "_ka_trade_staging"
_BOOK_STAGING = "_ka_book_staging"
_BOOK_COLS = ("ticker", "ts", "source", "received_at", "sequence", "yes_prices", "yes_sizes", "no_prices", "no_sizes")

INSERT_GAP_SQL = (
    "INSERT INTO feed_gaps (key, detected_at, channel, sid, market_ticker, cause, seq_expected, seq_received, "
    "gap_start, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb) ON CONFLICT (key) DO NOTHING"
)
REPAIR_GAP_SQL = (
    "UPDATE feed_gaps SET gap_end = $2, repaired_at = $3, repair_method = $4, "
    "details = CASE WHEN $5::jsonb IS NULL THEN details ELSE COALESCE(details, '{}'::jsonb) || $5::jsonb END "
    "WHERE key = $1"
)


def _json(v: Any) -> str | None:
    return None if v is None else json.dumps(v, separators=(",", ":"), default=str)


def _merge_markets(rows: Sequence[MarketRow]) -> list[MarketRow]:
    """One row per ticker, in ticker order: later non-null fields win (the database's COALESCE rule, applied
    in batch order, so one INSERT … ON CONFLICT never touches a row twice)."""
    merged: dict[str, MarketRow] = {}
    for r in rows:
        prev = merged.get(r.ticker)
        if prev is None:
            merged[r.ticker] = r
        else:
            merged[r.ticker] = MarketRow._make(
                new if new is not None else old for old, new in zip(prev, r, strict=True)
            )
    return [merged[t] for t in sorted(merged)]


def _market_args(rows: Sequence[MarketRow]) -> list[list[Any]]:
    cols: list[list[Any]] = [[] for _ in MARKET_COLUMNS]
    for r in rows:
        for i, v in enumerate(r):
            cols[i].append(_json(v) if MARKET_COLUMNS[i] in ("raw", "price_ranges") else v)
    return cols


def series_since(*batches: Sequence[Any]) -> datetime | None:
    """The minute of the earliest exchange time among rows with a ``ts`` (None when there are none)."""
    times = [r.ts for rows in batches for r in rows]
    return min(times).replace(second=0, microsecond=0) if times else None


# ---------------------------------------------------------------------------------------------------- the sink
class Sink:
    """The recorder's batched, lossless writer. Use as ``async with Sink(engine) as sink: await sink.put(row)``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_max_rows: int = 5000,
        batch_max_seconds: float = 0.5,
        queue_max: int = 100_000,
        metrics: RecorderMetrics | None = None,
        max_spread: Decimal = DEFAULT_MAX_SPREAD,
        fence: Fence | None = None,
        notify_channel: str = notifications.CHANNEL,
        retry_initial_seconds: float = 0.2,
        retry_max_seconds: float = 10.0,
        write_timeout_seconds: float = 120.0,
        shutdown_timeout_seconds: float = 30.0,
        log_every_seconds: float = 10.0,
    ) -> None:
        if batch_max_rows < 1 or queue_max < 1:
            raise ValueError("batch_max_rows and queue_max must be at least 1")
        self._engine = engine
        self.batch_max_rows = batch_max_rows
        self.batch_max_seconds = batch_max_seconds
        self.queue_max = queue_max
        self.metrics = metrics if metrics is not None else RecorderMetrics()
        self.max_spread = max_spread
        self._fence = fence
        self._channel = notify_channel
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._write_timeout = write_timeout_seconds
        self._shutdown_timeout = shutdown_timeout_seconds
        self._log_every = log_every_seconds
        self._queue: asyncio.Queue[SinkItem] = asyncio.Queue(maxsize=queue_max)
        self._stats = SinkStats()
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._progress = asyncio.Event()
        self._flushing = 0
        self._last_log: dict[str, float] = {}

    # ----------------------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Sink:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close(flush=self._failure is None and not isinstance(exc, asyncio.CancelledError))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="recorder-sink")

    async def close(self, *, flush: bool = True) -> None:
        """Write what is queued (bounded by ``shutdown_timeout_seconds``), then stop the drain task."""
        if self._task is None:
            return
        try:
            if flush and self._failure is None:
                try:
                    await asyncio.wait_for(self.flush(), self._shutdown_timeout)
                except TimeoutError:
                    log.error("sink_closed_unflushed", pending=self._stats.put - self._stats.done)
        finally:
            task, self._task = self._task, None
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # already recorded as self._failure
                log.debug("sink_drain_ended_with_error")
            pending = self._stats.put - self._stats.done
            if pending:
                log.warning("sink_closed_with_pending_items", pending=pending)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stats(self) -> SinkStats:
        s = SinkStats(**{k: v for k, v in self._stats.__dict__.items()})
        s.new, s.duplicates, s.rejected = dict(s.new), dict(s.duplicates), dict(s.rejected)
        s.queue_depth = self._queue.qsize()
        return s

    # ---------------------------------------------------------------------------------------------------- input
    async def put(self, item: SinkItem) -> None:
        """Queue ``item``; waits while the queue is full (backpressure: counted, logged at most every few s)."""
        self._check_open()
        if self._queue.full():
            self._stats.backpressure_waits += 1
            self.metrics.backpressure_waits.inc()
            self._log_throttled("backpressure", "sink_backpressure", queue_max=self.queue_max)
            await self._queue.put(item)
        else:
            self._queue.put_nowait(item)
        self._stats.put += 1

    def put_nowait(self, item: SinkItem) -> bool:
        """Queue ``item`` if there is room; False (counted as backpressure) when the queue is full."""
        self._check_open()
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._stats.backpressure_waits += 1
            self.metrics.backpressure_waits.inc()
            self._log_throttled("backpressure", "sink_backpressure", queue_max=self.queue_max)
            return False
        self._stats.put += 1
        return True

    async def flush(self) -> None:
        """Wait until everything put so far is committed (or rejected as bad data)."""
        target = self._stats.put
        self._flushing += 1
        try:
            while self._stats.done < target:
                if self._failure is not None:
                    raise SinkClosedError("the sink stopped") from self._failure
                if not self.running:
                    raise SinkClosedError("the sink is not running")
                event = self._progress
                await event.wait()
        finally:
            self._flushing -= 1

    def _check_open(self) -> None:
        if self._failure is not None:
            raise SinkClosedError("the sink stopped") from self._failure
        if self._task is None:
            raise SinkClosedError("the sink is not running (use `async with Sink(...)`)")

    def _signal_progress(self) -> None:
        event, self._progress = self._progress, asyncio.Event()
        event.set()

    def _log_throttled(self, key: str, event: str, **kw: Any) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -1e9) >= self._log_every:
            self._last_log[key] = now
            log.warning(event, **kw)

    # ---------------------------------------------------------------------------------------------------- drain
    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                batch = [await self._queue.get()]
                deadline = loop.time() + self.batch_max_seconds
                while len(batch) < self.batch_max_rows:
                    try:
                        batch.append(self._queue.get_nowait())
                        continue
                    except asyncio.QueueEmpty:
                        pass
                    remaining = deadline - loop.time()
                    if remaining <= 0 or self._flushing:
                        break
                    try:
                        # Short slices, so a flush() never waits a whole batch_max_seconds.
                        batch.append(await asyncio.wait_for(self._queue.get(), min(remaining, 0.05)))
                    except TimeoutError:
                        continue
                self.metrics.queue_depth.set(self._queue.qsize())
                self.metrics.batch_rows.observe(len(batch))
                await self._commit(batch)
                self.metrics.queue_depth.set(self._queue.qsize())
                self._stats.batches += 1
                self._signal_progress()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failure = exc
            log.error("sink_stopped", error=repr(exc))
            self._signal_progress()
            raise

    async def _commit(self, items: list[SinkItem]) -> None:
        """Write ``items`` (retrying transient failures forever, bisecting bad data); marks them done."""
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self._write_timeout):
                    outcome = await self._write(items)
            except Exception as exc:
                if getattr(exc, "fatal_for_sink", False):
                    raise
                if is_transient(exc):
                    attempt += 1
                    await self._on_transient(exc, attempt, len(items))
                    continue
                if len(items) == 1:
                    self._reject(items[0], exc)
                    return
                mid = len(items) // 2
                log.info("sink_batch_bisected", rows=len(items), error=_short(exc))
                await self._commit(items[:mid])
                await self._commit(items[mid:])
                return
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
            self._on_success(outcome, len(items))
            return

    async def _on_transient(self, exc: BaseException, attempt: int, rows: int) -> None:
        s = self._stats
        if s.db_down_since is None:
            s.db_down_since = datetime.now(UTC)
            s.outages += 1
            self.metrics.db_outages.inc()
            log.warning("sink_database_unavailable", error=_short(exc), pending_batch=rows)
        else:
            self._log_throttled("retry", "sink_database_still_unavailable", error=_short(exc), attempt=attempt)
        s.retries += 1
        self.metrics.db_retries.inc()
        self.metrics.queue_depth.set(self._queue.qsize())
        backoff = min(self._retry_max, self._retry_initial * 2 ** min(attempt - 1, 30))
        await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 (jitter, not crypto)

    def _on_success(self, o: _Outcome, items: int) -> None:
        s = self._stats
        now = datetime.now(UTC)
        if s.db_down_since is not None:
            log.info("sink_database_back", down_seconds=round((now - s.db_down_since).total_seconds(), 3))
            s.db_down_since = None
        s.last_commit_at = now
        for table, n in o.new.items():
            _bump(s.new, table, n)
            self.metrics.rows_written.labels(table).inc(n)
        for table, n in o.duplicates.items():
            _bump(s.duplicates, table, n)
            self.metrics.rows_duplicate.labels(table).inc(n)
        s.candles_upserted += o.candles
        s.markets_unknown += o.markets_unknown
        s.repairs_unmatched += o.repairs_unmatched
        s.notifications += o.notifications
        if o.notifications:
            self.metrics.notifications.inc(o.notifications)
        lag = {kind: self.metrics.commit_lag.labels(kind) for kind in ("snapshot", "trade")}
        # A distribution, not a count: a big batch is sampled evenly (observing costs ~5 µs a row).
        step = max(1, len(o.lags) // LAG_SAMPLES_PER_BATCH)
        for kind, ts in o.lags[::step]:
            lag[kind].observe(max(0.0, (now - ts).total_seconds()))
        s.done += items

    def _reject(self, item: SinkItem, exc: BaseException) -> None:
        table = TABLE_OF.get(type(item), type(item).__name__)
        _bump(self._stats.rejected, table, 1)
        self.metrics.rows_rejected.labels(table).inc()
        log.error("sink_row_rejected", table=table, error=_short(exc), row=repr(item)[:2000])
        self._stats.done += 1

    # ----------------------------------------------------------------------------------------- one unit of work
    async def _write(self, items: Sequence[SinkItem]) -> _Outcome:
        by_type: dict[type, list[Any]] = {t: [] for t in TABLE_OF}
        for it in items:
            bucket = by_type.get(type(it))
            if bucket is None:
                raise TypeError(f"the sink does not write {type(it).__name__}")
            bucket.append(it)
        snaps: list[SnapshotRow] = by_type[SnapshotRow]
        trades: list[TradeRow] = by_type[TradeRow]
        books: list[OrderbookRow] = by_type[OrderbookRow]
        markets: list[MarketRow] = by_type[MarketRow]
        # Openings and repairs keep their batch order: a repair may follow its opening in the same batch.
        gaps = [it for it in items if type(it) is GapOpened or type(it) is GapRepaired]

        o = _Outcome(new={}, duplicates={}, candles=0, markets_unknown=0, repairs_unmatched=0, notifications=0, lags=[])
        touched: set[str] = set()
        async with self._engine.connect() as conn, conn.begin():
            # Through SQLAlchemy first: this opens the transaction the raw asyncpg calls below join.
            await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(self._write_timeout * 1000)}")
            pg: Any = (await conn.get_raw_connection()).driver_connection
            if self._fence is not None:
                await self._fence(pg)

            if markets:
                await self._write_markets(pg, markets, o, touched)
            if snaps:
                result, new_rows = await write_snapshots_returning_new(conn, snaps)
                _bump(o.new, "market_snapshots", result.new)
                _bump(o.duplicates, "market_snapshots", result.duplicates)
                if new_rows:
                    candles = aggregate_candles(new_rows, self.max_spread)
                    await pg.execute(UPSERT_CANDLES_SQL, *candle_columns(candles))
                    o.candles = len(candles)
                    touched.update(r.ticker for r in new_rows)
                    o.lags.extend(("snapshot", r.ts) for r in new_rows)
            if trades:
                await self._write_trades(pg, trades, o, touched)
            if books:
                await self._write_books(pg, books, o, touched)
            if gaps:
                await self._write_gaps(pg, gaps, o)
            notice = notifications.CommitNotice(tuple(sorted(touched)), series_since(snaps, trades, books))
            for payload in notifications.render_payloads(notice):
                await pg.execute("SELECT pg_notify($1, $2)", self._channel, payload)
                o.notifications += 1
        return o

    async def _write_markets(self, pg: Any, rows: Sequence[MarketRow], o: _Outcome, touched: set[str]) -> None:
        merged = _merge_markets(rows)
        complete = [r for r in merged if r.is_complete]
        partial = [r for r in merged if not r.is_complete]
        if complete:
            await pg.execute(UPSERT_MARKETS_SQL, *_market_args(complete))
        updated: set[str] = set()
        if partial:
            updated = {r[0] for r in await pg.fetch(UPDATE_MARKETS_SQL, *_market_args(partial))}
            unknown = [r.ticker for r in partial if r.ticker not in updated]
            if unknown:
                o.markets_unknown += len(unknown)
                log.info("sink_market_update_for_unknown_ticker", tickers=unknown[:20], count=len(unknown))
        _bump(o.new, "markets", len(complete) + len(updated))
        touched.update(r.ticker for r in complete)
        touched.update(updated)

    async def _write_trades(self, pg: Any, rows: Sequence[TradeRow], o: _Outcome, touched: set[str]) -> None:
        await pg.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TRADE_STAGING} (LIKE trades INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await pg.copy_records_to_table(_TRADE_STAGING, records=[r.as_tuple() for r in rows], columns=_TRADE_COLS)
        cols = ", ".join(_TRADE_COLS)
        new = await pg.fetch(
            f"INSERT INTO trades ({cols}) SELECT {cols} FROM {_TRADE_STAGING} ON CONFLICT (trade_id) DO NOTHING "
            "RETURNING ticker, ts"
        )
        await pg.execute(f"TRUNCATE {_TRADE_STAGING}")
        _bump(o.new, "trades", len(new))
        _bump(o.duplicates, "trades", len(rows) - len(new))
        touched.update(r[0] for r in new)
        o.lags.extend(("trade", r[1]) for r in new)

    async def _write_books(self, pg: Any, rows: Sequence[OrderbookRow], o: _Outcome, touched: set[str]) -> None:
        await pg.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_BOOK_STAGING} (LIKE orderbook_snapshots INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        records = [
            (
                r.ticker,
                r.ts,
                r.source,
                r.received_at,
                r.sequence,
                [lv.price for lv in r.yes],
                [lv.size for lv in r.yes],
                [lv.price for lv in r.no],
                [lv.size for lv in r.no],
            )
            for r in rows
        ]
        await pg.copy_records_to_table(_BOOK_STAGING, records=records, columns=_BOOK_COLS)
        cols = ", ".join(_BOOK_COLS)
        new = await pg.fetch(
            f"INSERT INTO orderbook_snapshots ({cols}) SELECT {cols} FROM {_BOOK_STAGING} ON CONFLICT DO NOTHING "
            "RETURNING ticker"
        )
        await pg.execute(f"TRUNCATE {_BOOK_STAGING}")
        _bump(o.new, "orderbook_snapshots", len(new))
        _bump(o.duplicates, "orderbook_snapshots", len(rows) - len(new))
        touched.update(r[0] for r in new)

    async def _write_gaps(self, pg: Any, rows: Sequence[GapOpened | GapRepaired], o: _Outcome) -> None:
        # In batch order: a repair may follow its opening in the same batch.
        for g in rows:
            if isinstance(g, GapOpened):
                status = await pg.execute(
                    INSERT_GAP_SQL,
                    g.key,
                    g.detected_at,
                    g.channel,
                    g.sid,
                    g.market_ticker,
                    g.cause,
                    g.seq_expected,
                    g.seq_received,
                    g.gap_start,
                    _json(g.details),
                )
                n = int(status.rsplit(" ", 1)[-1])
                _bump(o.new, "feed_gaps", n)
                _bump(o.duplicates, "feed_gaps", 1 - n)
            else:
                status = await pg.execute(
                    REPAIR_GAP_SQL, g.key, g.gap_end, g.repaired_at, g.repair_method, _json(g.details)
                )
                if status.endswith(" 0"):
                    o.repairs_unmatched += 1
                    log.warning("sink_gap_repair_without_opening", key=g.key)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]
