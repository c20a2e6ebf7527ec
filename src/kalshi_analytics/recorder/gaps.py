"""Gap detection bookkeeping and repair (DESIGN.md §5, KALSHI_API.md §5 "On a gap").

A :class:`~kalshi_analytics.kalshi.domain.SeqGap` (cause ``seq_jump``) or a
:class:`~kalshi_analytics.kalshi.domain.Disconnected` (cause ``disconnect``) becomes a ``feed_gaps`` row
(:class:`GapOpened`, written at once, even while PostgreSQL is down: the key is ours). Then the repair:

1. books: the affected books are marked stale and fresh snapshots requested (``get_snapshot`` for the sid's
   tickers; after a reconnect the client re-subscribes and the new subscriptions send snapshots anyway);
2. state: the current market state from REST → ``market_snapshots`` (``source="backfill"``) + ``markets``;
3. trades: every trade of the window from REST → ``trades`` (``source="backfill"``). A seq jump on a
   subscription of many markets cannot be attributed to one market, so the trades of *every* market of that
   subscription are read, with bounded concurrency; duplicates are harmless (``trade_id`` is the key).

and finally :class:`GapRepaired` with ``repair_method`` e.g. ``get_snapshot+rest_state+rest_trades``.

Window: ``gap_start`` is the exchange time of the last good message before the gap (minus a safety margin when
reading trades); the trades read have no upper bound (everything up to the moment of the repair), and after a
reconnect the repair waits until the subscriptions are re-made, so the backfill overlaps the live stream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kalshi_analytics.kalshi.answer_time import collect_answer_times
from kalshi_analytics.kalshi.domain import Disconnected, SeqGap
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.gap_log import GapLog
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.poll import Poller
from kalshi_analytics.recorder.rows import GapOpened, GapRepaired, SinkItem, gap_opened, snapshot_from_market, trade_row

log = get_logger(__name__)

Put = Callable[[SinkItem], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class GapStats:
    opened: int = 0
    repaired: int = 0
    failed: int = 0
    trades_read: int = 0

    @property
    def open(self) -> int:
        return self.opened - self.repaired - self.failed


@dataclass
class _Batch:
    gaps: list[GapOpened]
    tickers: set[str]
    before: Callable[[], Awaitable[list[str]]] | None
    state: bool
    trades: bool
    task: asyncio.Task[None] = field(init=False)


class GapRepairer:
    """Opens gap rows and runs their repairs as background tasks (bounded REST concurrency)."""

    def __init__(
        self,
        rest: KalshiRestClient,
        put: Put,
        poller: Poller,
        *,
        metrics: RecorderMetrics | None = None,
        concurrency: int = 8,
        margin_seconds: float = 5.0,
        retry_seconds: float = 1.0,
        max_attempts: int = 20,
        coalesce_seconds: float = 0.25,
        summary_seconds: float = 10.0,
    ) -> None:
        self.rest = rest
        self.put = put
        self.poller = poller
        self.metrics = metrics or RecorderMetrics()
        self.margin = timedelta(seconds=margin_seconds)
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts
        self._sem = asyncio.Semaphore(concurrency)
        self.coalesce_seconds = coalesce_seconds
        self._pending: dict[str, _Batch] = {}
        self.stats = GapStats()
        self.tasks: set[asyncio.Task[None]] = set()
        self.gap_log = GapLog(summary_seconds)

    async def open(
        self,
        event: SeqGap | Disconnected,
        *,
        gap_start: datetime | None,
        details: dict[str, Any] | None = None,
        cause: str | None = None,
    ) -> GapOpened:
        """Write the ``feed_gaps`` row of ``event``; ``cause`` overrides the default (seq_jump / disconnect)."""
        row = gap_opened(event, uuid.uuid4().hex, gap_start=gap_start, details=details, cause=cause)
        await self.put(row)
        self.stats.opened += 1
        self.metrics.gaps.labels(row.cause).inc()
        self.gap_log.opened(row)
        return row

    def repair(
        self,
        gap: GapOpened,
        tickers: Sequence[str],
        *,
        before: Callable[[], Awaitable[list[str]]] | None = None,
        state: bool = True,
        trades: bool = True,
        scope: str | None = None,
    ) -> asyncio.Task[None]:
        """Start the repair of ``gap`` for ``tickers`` in the background.

        ``before`` runs first (e.g. wait for the resubscription, request snapshots) and names the methods it used.
        Gaps of the same ``scope`` (e.g. one sid) detected while a repair of that scope waits to start join it:
        one REST pass repairs them all (each keeps its own ``feed_gaps`` row), so a burst of drops is not a burst
        of REST reads.
        """
        if scope is not None:
            pending = self._pending.get(scope)
            if pending is not None:
                pending.gaps.append(gap)
                pending.tickers.update(tickers)
                return pending.task
        batch = _Batch([gap], set(tickers), before, state, trades)
        batch.task = asyncio.create_task(self._run_batch(batch, scope), name=f"gap-{gap.key}")
        if scope is not None:
            self._pending[scope] = batch
        self.tasks.add(batch.task)
        batch.task.add_done_callback(self.tasks.discard)
        return batch.task

    async def _run_batch(self, batch: _Batch, scope: str | None) -> None:
        try:
            if scope is not None:
                await asyncio.sleep(self.coalesce_seconds)
        finally:
            if scope is not None and self._pending.get(scope) is batch:
                del self._pending[scope]
        await self._repair(batch)

    async def _repair(self, batch: _Batch) -> None:
        gaps, tickers = batch.gaps, sorted(batch.tickers)
        since = min(g.gap_start for g in gaps) - self.margin
        keys = [g.key for g in gaps]
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                methods = list(await batch.before()) if batch.before is not None else []
                n_state = n_trades = 0
                if batch.state and tickers:
                    n_state = await self._state(tickers)
                    methods.append("rest_state")
                if batch.trades and tickers:
                    n_trades = await self.read_back_trades(tickers, since)
                    methods.append("rest_trades")
                method = "+".join(methods) or "none"
                details = {"markets": len(tickers), "state_rows": n_state, "trades_read": n_trades}
                await self.finish(keys, method=method, details=details, markets=len(tickers), trades=n_trades)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("feed_gap_repair_failed", keys=keys[:5], attempt=attempt, error=repr(exc)[:300])
                last_error = exc
                await asyncio.sleep(min(30.0, self.retry_seconds * attempt))
        await self.give_up(keys, f"repair failed {self.max_attempts} times: {last_error!r}"[:500])

    async def finish(
        self, keys: Sequence[str], *, method: str, details: dict[str, Any], markets: int, trades: int
    ) -> None:
        """Mark the gaps ``keys`` repaired (one pass repaired them all)."""
        now = _now()
        high = self.poller.high_water
        if len(keys) > 1:
            details = {**details, "repaired_together": len(keys)}
        for key in keys:
            await self.put(
                GapRepaired(
                    key=key,
                    gap_end=max(now, high) if high is not None else now,
                    repaired_at=now,
                    repair_method=method,
                    details=details,
                )
            )
        self.stats.repaired += len(keys)
        self.stats.trades_read += trades
        self.metrics.gaps_repaired.labels(method).inc(len(keys))
        self.gap_log.repaired(list(keys), method=method, markets=markets, trades=trades)

    async def give_up(
        self,
        keys: Sequence[str],
        reason: str,
        details: dict[str, Any] | None = None,
        *,
        gap_end: datetime | None = None,
    ) -> None:
        """Close the gaps ``keys`` as unrepairable: a reason instead of an open row nobody will ever look at
        again. Not for a repair that was merely interrupted (a stop, a lost lease): those stay open for the next
        leader."""
        now = _now()
        for key in keys:
            await self.put(
                GapRepaired(
                    key=key,
                    gap_end=gap_end or now,
                    repaired_at=None,
                    repair_method="unrepairable",
                    details=details,
                    unrepairable_reason=reason,
                )
            )
        self.stats.failed += len(keys)
        self.metrics.gaps_repaired.labels("unrepairable").inc(len(keys))
        log.warning("feed_gap_unrepairable", keys=list(keys)[:20], count=len(keys), reason=reason)

    def spawn(self, work: Awaitable[None], name: str) -> asyncio.Task[None]:
        """Run a repair written elsewhere (the resume of a new leader) among these tasks: ``wait_idle`` waits
        for it and ``close`` cancels it."""

        async def run() -> None:
            await work

        task = asyncio.create_task(run(), name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _state(self, tickers: list[str]) -> int:
        with collect_answer_times() as made:
            markets = await self.poller.fetch_tickers(tickers)
        received = _now()
        ts = min(made, default=received)  # exchange time of the answers when the server gives it
        n = 0
        for m in markets:
            await self.put(await self.poller.catalog.market_row(m))
            await self.put(snapshot_from_market(m, ts, received, "backfill"))
            n += 1
        return n

    async def read_back_trades(self, tickers: list[str], since: datetime) -> int:
        """Every trade of ``tickers`` since ``since`` from REST into the sink (idempotent); how many were read."""
        min_ts = int(since.timestamp())

        async def one(ticker: str) -> int:
            async with self._sem:
                received = _now()
                n = 0
                async for t in self.rest.iter_trades(ticker=ticker, min_ts=min_ts):
                    row = trade_row(t, received, "backfill")
                    if row is not None:
                        await self.put(row)
                        n += 1
                return n

        return sum(await asyncio.gather(*(one(t) for t in tickers)))

    async def wait_idle(self) -> None:
        """Wait for the running repairs (bound it with ``asyncio.timeout``)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        self.gap_log.flush()
