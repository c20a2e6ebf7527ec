"""The poll loop: every ``POLL_INTERVAL_SECONDS`` page through the recorded markets over REST.

Each poll upserts ``markets`` and appends a ``market_snapshots`` row (``source="poll"``) only for markets whose
observable state (bid/ask/last/volume/open interest/status) changed since the previous poll. A market that
leaves the selection (e.g. ``status=open`` and it closed) is still fetched by ticker until it is finalized, so
the final status, result and settlement are always recorded even if the lifecycle frame was lost; one the
exchange no longer knows (404 when asked for alone) is handed to ``on_gone`` and no longer fetched.

Snapshot time: when the answers were made on the exchange's clock (``Date`` − ``Age``, the oldest page's) when the
server says; else the market's ``updated_time`` when it changed together with the observed state, else the poll's
receipt time; ``received_at`` is always the receipt time.

An overrunning poll is logged and counted (``poll_overruns``); the next one starts at once — never two at a
time, never a pile-up.

The optional *trade sweep* (every ``sweep_every`` polls) re-reads the trades of markets whose volume changed
since the previous sweep from REST (``source="backfill"``; ``trade_id`` is the key, so duplicates are free):
it catches the one loss a seq check cannot see — a dropped frame that was the last one of its subscription.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kalshi_analytics.kalshi.answer_time import collect_answer_times
from kalshi_analytics.kalshi.domain import Market
from kalshi_analytics.kalshi.errors import KalshiApiError
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.rows import MarketRow, SinkItem, market_row_from_domain, snapshot_from_market, trade_row

log = get_logger(__name__)

FINAL_STATUSES = frozenset({"finalized", "settled"})
TICKERS_PER_REQUEST = 100

Put = Callable[[SinkItem], Awaitable[None]]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Selection:
    """What to record: a status filter (``open`` by default) and optional series / events / categories."""

    status: str | None = "open"
    series: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"status={self.status or 'any'}"]
        for name, vals in (("series", self.series), ("events", self.events), ("categories", self.categories)):
            if vals:
                parts.append(f"{name}={','.join(vals)}")
        return " ".join(parts)


def observable(m: Market) -> tuple[Any, ...]:
    return (m.yes_bid, m.yes_ask, m.last_price, m.volume, m.open_interest, str(m.status), str(m.result or ""))


class Catalog:
    """Series and event lookups (category comes from the series, series from the event), cached."""

    def __init__(self, rest: KalshiRestClient) -> None:
        self.rest = rest
        self.event_series: dict[str, str | None] = {}
        self.series_category: dict[str, str | None] = {}

    async def series_of(self, event_ticker: str | None) -> str | None:
        if not event_ticker:
            return None
        if event_ticker not in self.event_series:
            try:
                ev = await self.rest.get_event(event_ticker, with_nested_markets=False)
                self.event_series[event_ticker] = ev.series_ticker
            except Exception as exc:  # an unknown event must not stop the poll
                log.warning("poll_event_lookup_failed", event_ticker=event_ticker, error=repr(exc)[:200])
                return None
        return self.event_series[event_ticker]

    async def category_of(self, series_ticker: str | None) -> str | None:
        if not series_ticker:
            return None
        if series_ticker not in self.series_category:
            try:
                self.series_category[series_ticker] = (await self.rest.get_series(series_ticker)).category
            except Exception as exc:
                log.warning("poll_series_lookup_failed", series_ticker=series_ticker, error=repr(exc)[:200])
                return None
        return self.series_category[series_ticker]

    async def market_row(self, m: Market) -> MarketRow:
        series = await self.series_of(m.event_ticker)
        return market_row_from_domain(m, await self.category_of(series), series_ticker=series)


@dataclass
class PollStats:
    polls: int = 0
    overruns: int = 0
    failures: int = 0
    markets: int = 0
    snapshots: int = 0
    unchanged: int = 0
    sweeps: int = 0
    sweep_trades: int = 0
    last_duration: float = 0.0
    last_poll_at: datetime | None = None
    new_tickers: list[str] = field(default_factory=list)


class Poller:
    """The poll loop. ``on_new_markets`` is told about tickers seen for the first time (to subscribe them)."""

    def __init__(
        self,
        rest: KalshiRestClient,
        put: Put,
        selection: Selection | None = None,
        *,
        interval: float = 5.0,
        metrics: RecorderMetrics | None = None,
        catalog: Catalog | None = None,
        on_new_markets: Callable[[list[Market]], Awaitable[None]] | None = None,
        on_gone: Callable[[list[str]], Awaitable[None]] | None = None,
        sweep_every: int | None = 6,
        sweep_margin_seconds: float = 60.0,
        sweep_concurrency: int = 4,
    ) -> None:
        self.rest = rest
        self.put = put
        self.selection = selection or Selection()
        self.interval = interval
        self.metrics = metrics or RecorderMetrics()
        self.catalog = catalog or Catalog(rest)
        self.on_new_markets = on_new_markets
        self.on_gone = on_gone
        self.sweep_every = sweep_every
        self.sweep_margin = timedelta(seconds=sweep_margin_seconds)
        self._sweep_sem = asyncio.Semaphore(sweep_concurrency)
        self.stats = PollStats()
        self.state: dict[str, tuple[Any, ...]] = {}  # ticker → observable state at the last poll
        self.updated: dict[str, datetime | None] = {}  # ticker → updated_time at the last poll
        self.status: dict[str, str] = {}
        self.tracked: set[str] = set()  # recorded markets not yet finalized
        self._lock = asyncio.Lock()
        self._sweep_volume: dict[str, Any] = {}
        self._sweep_since: datetime | None = None
        self.high_water: datetime | None = None  # newest exchange-side time seen in a poll

    @property
    def tickers(self) -> list[str]:
        return sorted(self.state)

    def forget(self, ticker: str) -> None:
        """The last answer for ``ticker`` was not written (it may have been stale): send the next one again."""
        if ticker in self.state:
            self.state[ticker] = ()

    # ------------------------------------------------------------------------------------------------ listing
    async def _series_tickers(self) -> list[str]:
        sel = self.selection
        out = list(sel.series)
        for cat in sel.categories:
            for s in await self.rest.get_series_list(category=cat):
                self.catalog.series_category[s.ticker] = s.category
                out.append(s.ticker)
        return list(dict.fromkeys(out))

    async def list_selection(self) -> list[Market]:
        """Every market of the selection right now (deduplicated by ticker)."""
        sel = self.selection
        status = sel.status
        found: dict[str, Market] = {}
        if not (sel.series or sel.events or sel.categories):
            async for m in self.rest.iter_markets(status=status):
                found[m.ticker] = m
            return list(found.values())
        for series in await self._series_tickers():
            async for m in self.rest.iter_markets(status=status, series_ticker=series):
                found[m.ticker] = m
                self.catalog.event_series.setdefault(m.event_ticker or "", series)
        for event in sel.events:
            async for m in self.rest.iter_markets(status=status, event_ticker=event):
                found[m.ticker] = m
        return list(found.values())

    async def matches(self, m: Market) -> bool:
        """Whether a market (e.g. one just created) belongs to the selection, status aside."""
        sel = self.selection
        if not (sel.series or sel.events or sel.categories):
            return True
        if m.event_ticker in sel.events:
            return True
        series = await self.catalog.series_of(m.event_ticker)
        if series in sel.series:
            return True
        return bool(sel.categories) and await self.catalog.category_of(series) in sel.categories

    async def fetch_tickers(self, tickers: Iterable[str]) -> list[Market]:
        todo = list(tickers)
        out: list[Market] = []
        for i in range(0, len(todo), TICKERS_PER_REQUEST):
            chunk = todo[i : i + TICKERS_PER_REQUEST]
            out.extend([m async for m in self.rest.iter_markets(tickers=chunk)])
        return out

    async def fetch_known(self, tickers: Iterable[str]) -> tuple[list[Market], list[str]]:
        """Markets by ticker in batches; one missing from a batch answer is asked for alone
        (``GET /markets/{ticker}``), and is *gone* only if the exchange answers 404 to that."""
        todo = list(tickers)
        found = await self.fetch_tickers(todo)
        seen = {m.ticker for m in found}
        gone: list[str] = []
        for ticker in todo:
            if ticker in seen:
                continue
            try:
                found.append(await self.rest.get_market(ticker))
            except KalshiApiError as exc:
                if exc.status != 404:
                    raise
                gone.append(ticker)
        return found, gone

    # ------------------------------------------------------------------------------------------------- a poll
    async def poll_once(self, *, sweep: bool | None = None) -> int:
        """One poll; returns how many snapshots it wrote. Never runs twice at once."""
        async with self._lock:
            started = time.perf_counter()
            with collect_answer_times() as made:
                markets = await self.list_selection()
                listed = {m.ticker for m in markets}
                leftover = [t for t in self.tracked if t not in listed]
                gone: list[str] = []
                if leftover:
                    found, gone = await self.fetch_known(leftover)
                    markets.extend(found)
            received = _now()
            if gone:
                # Never final, never fetched again: without this it would stay "active" forever.
                self.tracked.difference_update(gone)
                log.warning("poll_markets_gone", tickers=gone[:20], count=len(gone))
                if self.on_gone is not None:
                    await self.on_gone(gone)
            written = await self.ingest(markets, received, source="poll", as_of=min(made, default=None))
            s = self.stats
            s.polls += 1
            s.markets = len(self.state)
            s.last_duration = time.perf_counter() - started
            s.last_poll_at = received
            self.metrics.poll_duration.observe(s.last_duration)
            self.metrics.messages.labels("rest_market").inc(len(markets))
            do_sweep = sweep if sweep is not None else bool(self.sweep_every and s.polls % self.sweep_every == 0)
            if do_sweep:
                await self.sweep_trades(markets)
            return written

    async def ingest(
        self, markets: Iterable[Market], received: datetime, *, source: str, as_of: datetime | None = None
    ) -> int:
        """Upsert changed markets and append their snapshots; tells ``on_new_markets`` about new tickers.

        ``as_of``: when the oldest of the answers was made (exchange time, from ``Date`` − ``Age``), if known."""
        written = 0
        new: list[Market] = []
        for m in markets:
            state = observable(m)
            prev = self.state.get(m.ticker)
            status = str(m.status) if m.status is not None else ""
            if prev is None:
                new.append(m)
            if status not in FINAL_STATUSES:
                self.tracked.add(m.ticker)
            else:
                self.tracked.discard(m.ticker)
            if prev == state:
                self.stats.unchanged += 1
                continue
            upd = m.updated_time
            ts = upd if upd is not None and upd != self.updated.get(m.ticker) and prev is not None else received
            if as_of is not None:
                ts = as_of
            self.state[m.ticker] = state
            self.updated[m.ticker] = upd
            self.status[m.ticker] = status
            if upd is not None and (self.high_water is None or upd > self.high_water):
                self.high_water = upd
            await self.put(await self.catalog.market_row(m))
            await self.put(snapshot_from_market(m, ts, received, source))
            written += 1
        self.stats.snapshots += written
        if new and self.on_new_markets is not None:
            await self.on_new_markets(new)
        return written

    # ------------------------------------------------------------------------------------------------ sweep
    async def sweep_trades(self, markets: Iterable[Market] | None = None, since: datetime | None = None) -> int:
        """Re-read from REST the trades of markets whose volume changed since the last sweep."""
        if markets is None:
            markets = await self.fetch_tickers(self.state)
        changed = [m for m in markets if m.volume != self._sweep_volume.get(m.ticker)]
        start = since or self._sweep_since
        self._sweep_since = _now() if self.high_water is None else max(_now(), self.high_water)
        min_ts = None if start is None else int((start - self.sweep_margin).timestamp())
        rows = 0

        async def one(m: Market) -> int:
            async with self._sweep_sem:
                n = 0
                received = _now()
                async for t in self.rest.iter_trades(ticker=m.ticker, min_ts=min_ts):
                    row = trade_row(t, received, "backfill")
                    if row is not None:
                        await self.put(row)
                        n += 1
                self._sweep_volume[m.ticker] = m.volume
                return n

        for n in await asyncio.gather(*(one(m) for m in changed)):
            rows += n
        self.stats.sweeps += 1
        self.stats.sweep_trades += rows
        return rows

    # ------------------------------------------------------------------------------------------------- loop
    async def run(self) -> None:
        """Poll forever: every ``interval`` seconds, or at once after an overrun. Errors are logged, never fatal."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at, loop.time())
            try:
                n = await self.poll_once()
                log.debug("poll_done", snapshots=n, markets=self.stats.markets, seconds=self.stats.last_duration)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.failures += 1
                log.warning("poll_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            next_at += self.interval
            late = loop.time() - next_at
            if late > 0:
                self.stats.overruns += 1
                self.metrics.poll_overruns.inc()
                log.warning("poll_overrun", seconds=round(self.stats.last_duration, 3), interval=self.interval)
                next_at = loop.time()
                continue
            await asyncio.sleep(-late)
