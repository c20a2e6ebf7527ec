"""The stream loop: Kalshi's WebSocket → rows (DESIGN.md §5).

Subscriptions (sharded by :class:`~kalshi_analytics.kalshi.ws.KalshiWsClient`): ``ticker``, ``trade`` and
``orderbook_delta`` for the recorded markets, ``market_lifecycle_v2`` for all markets (it has no ticker filter).

- ``ticker`` → :class:`SnapshotRow` (``source="websocket"``, ``sequence``, exchange ``ts`` from ``ts_ms``, our
  ``received_at``);
- ``trade`` → :class:`TradeRow` (exchange time = the trade's ``created_time``);
- ``orderbook_snapshot`` / ``orderbook_delta`` → :class:`~kalshi_analytics.recorder.books.BookKeeper`, whose
  fresh, changed books become :class:`OrderbookRow` every ``book_interval`` seconds;
- lifecycle: ``created``/``activated`` of a market in the selection → fetch it over REST, upsert it, subscribe
  it and read its trades since it opened; ``determined``/``settled`` → the ``markets`` row's status, result,
  settlement value and time; after ``settled`` the market leaves the subscriptions.
- :class:`SeqGap` / :class:`Disconnected` → :class:`~kalshi_analytics.recorder.gaps.GapRepairer`.

Frames that cannot be parsed or hold impossible values are rejected by the client (``kalshi/validation.py``); on
top of that a data frame about a market this recorder does not track is rejected here (``unknown_ticker``). Both
are counted and kept raw by :class:`~kalshi_analytics.recorder.rejected.RejectedLog`; recording goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kalshi_analytics.kalshi.domain import (
    CommandError,
    Disconnected,
    EventLifecycle,
    Market,
    MarketLifecycle,
    OrderbookDelta,
    OrderbookSnapshot,
    Reconnected,
    SeqGap,
    TickerUpdate,
    TradeUpdate,
    WsData,
    WsEvent,
)
from kalshi_analytics.kalshi.errors import KalshiApiError, KalshiProtocolError
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.kalshi.status import Channel, MarketStatus, status_matches
from kalshi_analytics.kalshi.validation import Reason, market_of
from kalshi_analytics.kalshi.ws import KalshiWsClient, Subscription
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.books import BookKeeper
from kalshi_analytics.recorder.gaps import GapRepairer
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.poll import Poller
from kalshi_analytics.recorder.rows import SinkItem, market_row_from_lifecycle, snapshot_from_ticker, trade_row

log = get_logger(__name__)

Put = Callable[[SinkItem], Awaitable[None]]
MARKET_CHANNELS = (Channel.TICKER, Channel.TRADE, Channel.ORDERBOOK_DELTA)
# Frames of a market already unsubscribed may still be in flight; they are real data, not strangers.
LEAVING_GRACE_SECONDS = 30.0
# A tuple, not ``A | B``: isinstance of a union builds the union on every call (once per frame here).
_DATA_TYPES = (TickerUpdate, TradeUpdate, OrderbookSnapshot, MarketLifecycle)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StreamStats:
    snapshots: int = 0
    trades: int = 0
    book_rows: int = 0
    lifecycle: int = 0
    disconnects: int = 0
    reconnects: int = 0
    added: int = 0
    removed: int = 0


class StreamRecorder:
    """Runs the WS side of the recorder: subscriptions, row production, gap handling."""

    def __init__(
        self,
        ws: KalshiWsClient,
        rest: KalshiRestClient,
        put: Put,
        poller: Poller,
        gaps: GapRepairer,
        *,
        metrics: RecorderMetrics | None = None,
        book_interval: float = 10.0,
        resubscribe_timeout: float = 60.0,
    ) -> None:
        self.ws = ws
        self.rest = rest
        self.put = put
        self.poller = poller
        self.gaps = gaps
        self.metrics = metrics or RecorderMetrics()
        self.books = BookKeeper(book_interval)
        self.resubscribe_timeout = resubscribe_timeout
        self.subs: dict[str, Subscription] = {}
        self.tickers: set[str] = set()
        self.stats = StreamStats()
        self.last_ts: dict[int, datetime] = {}  # sid → exchange time of its last good message
        self.high_water: datetime | None = None  # newest exchange time seen
        self._leaving: dict[str, float] = {}  # ticker → when it was unsubscribed (monotonic)
        ws.dispatcher.admit = self.admit
        self._reconnected = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        kinds = ("ticker", "trade", "orderbook_snapshot", "orderbook_delta", "market_lifecycle_v2", "other")
        self._msg_counters = {k: self.metrics.messages.labels(k) for k in kinds}
        self._counts = dict.fromkeys(kinds, 0)
        self._counted = dict.fromkeys(kinds, 0)

    # --------------------------------------------------------------------------------------------- subscriptions
    async def start(self, tickers: Sequence[str]) -> None:
        """Subscribe every channel (market channels for ``tickers``; more can be added later)."""
        self.tickers = set(tickers)
        for ch in MARKET_CHANNELS:
            self.subs[str(ch)] = await self.ws.subscribe(ch, sorted(self.tickers))
        self.subs[str(Channel.MARKET_LIFECYCLE_V2)] = await self.ws.subscribe(Channel.MARKET_LIFECYCLE_V2)
        log.info("stream_subscribed", markets=len(self.tickers))

    async def add(self, tickers: Iterable[str], *, backfill_since: dict[str, datetime | None] | None = None) -> None:
        new = [t for t in tickers if t not in self.tickers]
        if not new:
            return
        self.tickers.update(new)
        for ch in MARKET_CHANNELS:
            sub = self.subs.get(str(ch))
            if sub is not None:
                await self.ws.add_markets(sub, new)
        self.stats.added += len(new)
        log.info("stream_markets_added", count=len(new), first=new[:5])
        if backfill_since is not None:
            self._spawn(self._backfill_new(new, backfill_since))

    async def on_new_markets(self, markets: Sequence[Market]) -> None:
        """Poller callback: subscribe markets seen for the first time and read their trades since they opened."""
        if self.subs:
            await self.add([m.ticker for m in markets], backfill_since={m.ticker: m.open_time for m in markets})

    async def remove(self, tickers: Iterable[str]) -> None:
        gone = [t for t in tickers if t in self.tickers]
        if not gone:
            return
        self.tickers.difference_update(gone)
        now = time.monotonic()
        self._leaving = {t: at for t, at in self._leaving.items() if now - at < LEAVING_GRACE_SECONDS}
        self._leaving.update(dict.fromkeys(gone, now))
        for ch in MARKET_CHANNELS:
            sub = self.subs.get(str(ch))
            if sub is not None:
                await self.ws.remove_markets(sub, gone)
        for t in gone:
            self.books.discard(t)
        self.stats.removed += len(gone)

    def admit(self, msg: WsData) -> tuple[str, str] | None:
        """The dispatcher's last check: a market-channel frame must be about a market this recorder subscribed."""
        ticker = market_of(msg)
        if ticker is None or ticker in self.tickers:
            return None
        left = self._leaving.get(ticker)
        if left is not None and time.monotonic() - left < LEAVING_GRACE_SECONDS:
            return None
        return Reason.UNKNOWN_TICKER, f"{ticker!r} is not a market this recorder subscribed"

    async def _backfill_new(self, tickers: list[str], since: dict[str, datetime | None]) -> None:
        """Trades of markets that started trading before their subscription took effect."""
        for t in tickers:
            start = since.get(t)
            min_ts = int((start - timedelta(seconds=5)).timestamp()) if start is not None else None
            received = _now()
            try:
                async for tr in self.rest.iter_trades(ticker=t, min_ts=min_ts):
                    row = trade_row(tr, received, "backfill")
                    if row is not None:
                        await self.put(row)
            except Exception as exc:
                log.warning("stream_new_market_backfill_failed", ticker=t, error=repr(exc)[:200])

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------------------------------------ the loop
    async def run(self) -> None:
        book_task = asyncio.create_task(self._book_loop(), name="recorder-books")
        ws = self.ws
        self.metrics.ws_connected.set_function(lambda: 1.0 if ws.connected else 0.0)
        try:
            async for ev in self.ws.events():
                await self.handle(ev)
        finally:
            self.metrics.ws_connected.set_function(lambda: 0.0)
            book_task.cancel()
            self.sync_metrics()
            for t in list(self._tasks):
                t.cancel()

    async def _book_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.books.interval))
            self.sync_metrics()
            await self.flush_books()

    async def flush_books(self, *, force: bool = False) -> int:
        rows = self.books.due_rows(time.monotonic(), force=force)
        for r in rows:
            await self.put(r)
        self.stats.book_rows += len(rows)
        return len(rows)

    def _seen(self, sid: int | None, ts: datetime | None) -> None:
        if ts is None:
            return
        if sid is not None:
            self.last_ts[sid] = ts
        if self.high_water is None or ts > self.high_water:
            self.high_water = ts
            ph = self.poller.high_water
            if ph is None or ts > ph:
                self.poller.high_water = ts

    async def handle(self, ev: WsEvent) -> None:
        # Deltas first and written out: three frames in four. Counted in plain ints; the Prometheus counter is
        # brought up to date every second (an ``inc`` per frame was a measurable share of the ingest).
        if type(ev) is OrderbookDelta:
            self._counts["orderbook_delta"] += 1
            ts = ev.ts
            if ts is not None:
                if ev.sid is not None:
                    self.last_ts[ev.sid] = ts
                if self.high_water is None or ts > self.high_water:
                    self._seen(None, ts)
            self.books.on_delta(ev)
        elif isinstance(ev, _DATA_TYPES):
            await self._data(ev)
        else:
            await self._control(ev)

    async def _data(self, ev: TickerUpdate | TradeUpdate | OrderbookSnapshot | MarketLifecycle) -> None:
        counts = self._counts
        if isinstance(ev, TickerUpdate):
            counts["ticker"] += 1
            self._seen(ev.sid, ev.ts)
            await self.put(snapshot_from_ticker(ev, ev.received_at or _now()))
            self.stats.snapshots += 1
        elif isinstance(ev, TradeUpdate):
            counts["trade"] += 1
            row = trade_row(ev.trade, ev.received_at or _now(), "websocket")
            self._seen(ev.sid, ev.trade.created_time)
            if row is not None:
                await self.put(row)
                self.stats.trades += 1
        elif isinstance(ev, OrderbookSnapshot):
            counts["orderbook_snapshot"] += 1
            self.books.on_snapshot(ev)
        else:
            counts["market_lifecycle_v2"] += 1
            self.stats.lifecycle += 1
            await self._lifecycle(ev, ev.received_at or _now())

    async def _control(self, ev: WsEvent) -> None:
        if isinstance(ev, SeqGap):
            await self._on_seq_gap(ev)
        elif isinstance(ev, Disconnected):
            await self._on_disconnect(ev)
        elif isinstance(ev, Reconnected):
            self.stats.reconnects += 1
            self.metrics.reconnects.inc()
            self._reconnected.set()
        elif isinstance(ev, CommandError):
            log.warning("stream_command_error", code=ev.code, message=ev.message)
        else:
            self._counts["other"] += 1
            if isinstance(ev, EventLifecycle) and ev.series_ticker:
                # The event's series, as announced: a new market of it needs no REST lookup of its event.
                self.poller.catalog.event_series.setdefault(ev.event_ticker, ev.series_ticker)

    @property
    def messages(self) -> int:
        """Data messages handled so far (every type but ``other``)."""
        return sum(self._counts.values()) - self._counts["other"]

    def sync_metrics(self) -> None:
        """Bring the messages counter up to date with the plain counts (each second, and on the way out)."""
        for kind, n in self._counts.items():
            done = self._counted[kind]
            if n > done:
                self._msg_counters[kind].inc(n - done)
                self._counted[kind] = n

    # -------------------------------------------------------------------------------------------------- lifecycle
    async def _lifecycle(self, ev: MarketLifecycle, received: datetime) -> None:
        t = ev.market_ticker
        kind = str(ev.event_type)
        known = t in self.poller.state
        if kind in ("created", "activated") and not known:
            if kind == "created" and not self._records_unopened():
                return  # it opens later with an "activated" event (and the poll lists it then, too)
            self._spawn(self._adopt(t, received))
            return
        if not known:
            return
        row = market_row_from_lifecycle(ev, received)
        if row is not None:
            await self.put(row)
        if kind == "settled":
            # In a task: the handler must never wait for a WS command's answer (the reader may be waiting for us).
            self._spawn(self.remove([t]))

    def _records_unopened(self) -> bool:
        status = self.poller.selection.status
        return status is None or status_matches(status, MarketStatus.INITIALIZED)

    async def _adopt(self, ticker: str, received: datetime) -> None:
        """A market was created/activated: fetch it (it may 404 briefly), record and subscribe it if selected."""
        for attempt in range(5):
            try:
                m = await self.rest.get_market(ticker)
                break
            except KalshiProtocolError as exc:  # impossible values: kept by the client's rejected log
                log.warning("stream_adopt_refused", ticker=ticker, reason=exc.kind)
                return
            except KalshiApiError as exc:
                if exc.status != 404:
                    log.warning("stream_adopt_failed", ticker=ticker, error=repr(exc)[:200])
                    return
                await asyncio.sleep(0.5 * (attempt + 1))
        else:
            return
        sel = self.poller.selection
        status = str(m.status) if m.status is not None else ""
        if sel.status is not None and not status_matches(sel.status, status):
            return  # e.g. "created" while we record open markets: the "activated" event comes later
        if not await self.poller.matches(m):
            return
        await self.poller.ingest([m], received, source="backfill")
        await self.add([ticker], backfill_since={ticker: m.open_time})

    # ------------------------------------------------------------------------------------------------------ gaps
    def _sub_of(self, sid: int) -> Subscription | None:
        for sub in self.subs.values():
            if sid in sub.sids:
                return sub
        return None

    async def _on_seq_gap(self, ev: SeqGap) -> None:
        sub = self._sub_of(ev.sid)
        channel = ev.channel or (sub.channel if sub is not None else "unknown")
        gap = await self.gaps.open(ev, gap_start=self.last_ts.get(ev.sid) or self.high_water)
        tickers = list(sub.tickers or ()) if sub is not None and sub.tickers is not None else self.poller.tickers
        scope = f"{channel}:{ev.sid}"
        if channel == Channel.ORDERBOOK_DELTA:
            self.books.mark_stale(ev.sid)
            sid = ev.sid

            async def resnap() -> list[str]:
                stale = [t for t, b in self.books.books.items() if b.stale and b.sid == sid]
                if sub is not None and stale and sid in sub.sids:
                    await self.ws.request_snapshot(sub, stale)
                return ["get_snapshot"]

            self.gaps.repair(gap, tickers, before=resnap, state=True, trades=False, scope=scope)
        elif channel == Channel.TRADE:
            self.gaps.repair(gap, tickers, state=True, trades=True, scope=scope)
        elif channel == Channel.TICKER:
            self.gaps.repair(gap, tickers, state=True, trades=False, scope=scope)
        else:  # lifecycle: the markets' state (status, result) from REST
            self.gaps.repair(gap, self.poller.tickers, state=True, trades=False, scope=scope)

    async def _on_disconnect(self, ev: Disconnected) -> None:
        self.stats.disconnects += 1
        self._reconnected.clear()
        self.books.mark_stale()
        gap = await self.gaps.open(ev, gap_start=self.high_water)

        async def resubscribed() -> list[str]:
            await asyncio.wait_for(self._reconnected.wait(), self.resubscribe_timeout)
            deadline = time.monotonic() + self.resubscribe_timeout
            while time.monotonic() < deadline:
                if self.ws.connected and all(
                    len(s.sids) > 0 or not s.tickers for s in self.subs.values() if s.tickers is not None
                ):
                    break
                await asyncio.sleep(0.05)
            return ["resubscribe_snapshots"]

        self.gaps.repair(gap, sorted(self.tickers), before=resubscribed, state=True, trades=True, scope="disconnect")
