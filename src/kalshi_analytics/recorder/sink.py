"""The sink: the recorder's one writer into PostgreSQL — its delivery side.

The loops ``put`` rows (:mod:`kalshi_analytics.recorder.rows`) into a bounded queue; one drain task takes up to
``batch_max_rows`` of them, or whatever arrived within ``batch_max_seconds``, and hands them to
:func:`~kalshi_analytics.recorder.tables.write_batch` as ONE unit of work (every table, and the commit
notification that fires exactly on commit).

Nothing is dropped: when PostgreSQL is unreachable the batch is kept, in order, and retried with capped,
jittered exponential backoff; meanwhile the queue fills, then (with a ``spill_dir``) rows go on to a spill file
(:mod:`~kalshi_analytics.recorder.spill`) up to ``spill_max_bytes``, so the loops keep recording through an outage;
only past that budget does ``put`` block (backpressure, bounded memory and disk). Rows come back out in the order
they were put: the queue first, then the spill, and while the spill holds anything new rows join it.
A batch the fence refuses (a deposed leader's) stops the sink: counted, never retried.
A batch that fails for a non-transient reason (bad data) is bisected until the offending rows are isolated;
those are logged with their content and counted as rejected, and the rest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import notifications
from kalshi_analytics.logs import get_logger
from kalshi_analytics.markets.candle_blocks import BlockKeeper
from kalshi_analytics.markets.pricing import DEFAULT_MAX_SPREAD
from kalshi_analytics.markets.service import CANDLE_OBJECT, SNAPSHOT_OBJECT
from kalshi_analytics.markets.snapshot_chunks import SnapshotChunks
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.rows import SinkItem
from kalshi_analytics.recorder.spill import Spill, SpillFull
from kalshi_analytics.recorder.tables import TABLE_OF, Fence, Written, write_batch

log = get_logger(__name__)

LAG_SAMPLES_PER_BATCH = 500
#: How long the stream's event journal keeps events (twice the API's default resume window) and how often the
#: sink prunes it, inside a batch's transaction.
DEFAULT_JOURNAL_KEEP_SECONDS = 600.0
JOURNAL_PRUNE_EVERY_SECONDS = 60.0
# 10 minutes at 1,000 rows/s is 600,000 rows; the simulator's snapshot rows pickle to ~1 KB with their raw
# payload, so 2 GiB holds that with room to spare.
DEFAULT_SPILL_MAX_BYTES = 2 * 1024**3


class SinkClosedError(RuntimeError):
    """``put`` on a sink that is not running (never started, closed, or stopped by a fatal error)."""


# ------------------------------------------------------------------------------------------------ error classes
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "40001", "40P01", "55P03")


_CONNECTION_ERRORS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,
)


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
        # InternalClientError ("cannot switch to state …"): a connection a dying server left mid-query, never data.
        if isinstance(e, _CONNECTION_ERRORS):
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
    events: int = 0  # appended to the stream's journal
    retries: int = 0
    outages: int = 0
    backpressure_waits: int = 0
    queue_depth: int = 0
    spilled: int = 0  # rows in the spill file now
    spilled_total: int = 0  # rows ever sent to the spill file
    fenced: int = 0  # batches the fence refused
    db_down_since: datetime | None = None
    last_commit_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("db_down_since", "last_commit_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


def _bump(d: dict[str, int], key: str, n: int) -> None:
    if n:
        d[key] = d.get(key, 0) + n


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
        on_rejected: Callable[[str, SinkItem, BaseException], None] | None = None,
        spill_dir: Path | None = None,
        spill_max_bytes: int = DEFAULT_SPILL_MAX_BYTES,
        journal_keep_seconds: float | None = DEFAULT_JOURNAL_KEEP_SECONDS,
        candle_blocks_per_batch: int = 50,
        snapshot_chunk_hours_per_batch: int = 5,
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
        #: Told of every row the database refused (table, row, error), so it can be kept rather than lost.
        self.on_rejected = on_rejected
        self._channel = notify_channel
        self._retry_initial = retry_initial_seconds
        self._retry_max = retry_max_seconds
        self._write_timeout = write_timeout_seconds
        self._shutdown_timeout = shutdown_timeout_seconds
        self._log_every = log_every_seconds
        self._queue: asyncio.Queue[SinkItem] = asyncio.Queue(maxsize=queue_max)
        #: Closed hours rendered for the history route, at most so many a batch: the candle block and the
        #: hour's snapshots in chunks (the raw pages; ~50 times the rows of a candle block).
        self.snapshot_chunks = SnapshotChunks(SNAPSHOT_OBJECT, max_spread, budget=snapshot_chunk_hours_per_batch)
        self.blocks = BlockKeeper(CANDLE_OBJECT, budget=candle_blocks_per_batch, also=[self.snapshot_chunks])
        self._spill = Spill(spill_dir, max_bytes=spill_max_bytes) if spill_dir is not None else None
        self._stats = SinkStats()
        self._held_peak = 0  # during the current database outage
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._progress = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._flushing = 0
        self._last_log: dict[str, float] = {}
        self._journal_keep = journal_keep_seconds  # None: never prune (another writer does)
        self._last_prune = -float("inf")

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
                # Only after a failure (a deposed leader's fenced sink) or a flush that timed out: counted, so a
                # leader that loses what it held is never silent about it.
                self.metrics.rows_discarded.inc(pending)
                spilled = len(self._spill) if self._spill is not None else 0
                log.warning("sink_closed_with_pending_items", pending=pending, spilled=spilled)
            if self._spill is not None:
                self._spill.close()
            self._set_held_gauges()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def stats(self) -> SinkStats:
        s = SinkStats(**{k: v for k, v in self._stats.__dict__.items()})
        s.new, s.duplicates, s.rejected = dict(s.new), dict(s.duplicates), dict(s.rejected)
        s.queue_depth = self._queue.qsize()
        s.spilled = len(self._spill) if self._spill is not None else 0
        return s

    @property
    def held(self) -> int:
        """Rows accepted and not yet written: in the queue, in the batch being written, and in the spill."""
        return self._stats.put - self._stats.done

    # ---------------------------------------------------------------------------------------------------- input
    async def put(self, item: SinkItem) -> None:
        """Queue ``item``; while the database is away and the queue is full, spill it to disk; wait only when
        neither has room (backpressure: counted, logged at most every few s)."""
        self._check_open()
        while self._spilling():
            if self._to_spill(item):
                return
            event = self._progress
            await event.wait()
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
        if self._spilling():
            return self._to_spill(item)
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

    def _spilling(self) -> bool:
        """Whether a new row goes to the spill: it holds rows already (order), or the queue is full while the
        database is away."""
        if self._spill is None:
            return False
        return len(self._spill) > 0 or (self._queue.full() and self._stats.db_down_since is not None)

    def _to_spill(self, item: SinkItem) -> bool:
        assert self._spill is not None
        try:
            self._spill.append(item)
        except SpillFull:
            self._stats.backpressure_waits += 1
            self.metrics.backpressure_waits.inc()
            self._log_throttled("spill_full", "sink_spill_full", max_bytes=self._spill.max_bytes)
            return False
        if len(self._spill) == 1:
            log.warning("sink_spilling", path=str(self._spill.path or self._spill.directory), queue_max=self.queue_max)
        self._stats.spilled_total += 1
        self._stats.put += 1
        self.metrics.spilled_rows.inc()
        return True

    def _set_held_gauges(self) -> None:
        held = self.held
        self.metrics.queue_depth.set(self._queue.qsize())
        self.metrics.held_rows.set(held)
        if self._stats.db_down_since is not None:
            self._held_peak = max(self._held_peak, held)

    def retry_now(self) -> None:
        """Cut a retry backoff short: the database is back (the leader just reconnected)."""
        self._retry_now.set()

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
                if self._queue.empty() and self._spill is not None and len(self._spill):
                    # The queue is older than the spill: only once it is empty do spilled rows go out.
                    batch = self._spill.take(self.batch_max_rows)
                    await self._write_counted(batch)
                    continue
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
                await self._write_counted(batch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failure = exc
            log.error("sink_stopped", error=repr(exc))
            self._signal_progress()
            raise

    async def _write_counted(self, batch: list[SinkItem]) -> None:
        self._set_held_gauges()
        self.metrics.batch_rows.observe(len(batch))
        await self._commit(batch)
        self._stats.batches += 1
        self._set_held_gauges()
        self._signal_progress()

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
                    self._stats.fenced += 1
                    self.metrics.fenced_batches.inc()
                    log.warning("sink_batch_fenced", rows=len(items), held=self.held, error=_short(exc))
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
        self._set_held_gauges()
        backoff = min(self._retry_max, self._retry_initial * 2 ** min(attempt - 1, 30))
        self._retry_now.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._retry_now.wait(), backoff * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)

    def _on_success(self, o: Written, items: int) -> None:
        s = self._stats
        now = datetime.now(UTC)
        if s.db_down_since is not None:
            log.info(
                "sink_database_back",
                down_seconds=round((now - s.db_down_since).total_seconds(), 3),
                held_peak=self._held_peak,  # the most rows held unwritten (queue + spill) during the outage
            )
            s.db_down_since = None
            self._held_peak = 0
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
        s.events += o.events
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
        if self.on_rejected is not None:
            try:
                self.on_rejected(table, item, exc)
            except Exception as err:  # keeping a copy must never stop the writer
                log.warning("sink_rejected_row_not_kept", table=table, error=repr(err)[:300])

    async def _write(self, items: Sequence[SinkItem]) -> Written:
        return await write_batch(
            self._engine,
            items,
            max_spread=self.max_spread,
            timeout_seconds=self._write_timeout,
            fence=self._fence,
            channel=self._channel,
            prune_journal_seconds=self._prune_due(),
            blocks=self.blocks,
        )

    def _prune_due(self) -> float | None:
        """The journal's retention when this batch should prune it (about once a minute), else None."""
        now = time.monotonic()
        if self._journal_keep is None or now - self._last_prune < JOURNAL_PRUNE_EVERY_SECONDS:
            return None
        self._last_prune = now
        return self._journal_keep


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]
