"""Live market updates as Server-Sent Events, fed by PostgreSQL LISTEN/NOTIFY.

The recorder's sink sends a commit notice (:mod:`kalshi_analytics.notifications`) when a batch commits. Each API
process holds ONE listening connection (:class:`StreamHub`); on a notification it fetches, in one query, the
latest snapshot of the touched tickers that some subscriber wants and fans it out to the subscribers'
queues. Any number of API replicas can run: each listens for itself. Notifications that arrive while a fetch
runs are coalesced (a subscriber wants the latest state, not every intermediate one); a slow subscriber's
queue drops its oldest update rather than growing. After the listener reconnects, every wanted ticker is
re-sent, since notifications sent while it was away are lost.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from kalshi_analytics.db.reads import Reads
from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.logs import get_logger
from kalshi_analytics.markets import service
from kalshi_analytics.markets.pricing import implied_probability_with_source
from kalshi_analytics.markets.schemas import Snapshot
from kalshi_analytics.notifications import CHANNEL as NOTIFY_CHANNEL
from kalshi_analytics.notifications import BadNotificationError, parse_payload
from kalshi_analytics.web.cache import ResponseCache
from kalshi_analytics.web.deps import API_PREFIX
from kalshi_analytics.web.params import NO_NUL
from kalshi_analytics.web.problems import problem_responses
from kalshi_analytics.web.ratelimit import rate_limit

log = get_logger(__name__)

MAX_STREAM_TICKERS = 200
#: A cached latest snapshot sent within this long is refreshed ahead when its market changes.
REFRESH_IF_SENT_WITHIN_SECONDS = 10.0
SUBSCRIBER_QUEUE = 256


@dataclass(eq=False)
class Subscriber:
    tickers: frozenset[str]
    queue: asyncio.Queue[Snapshot] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE))
    dropped: int = 0

    def offer(self, snap: Snapshot) -> None:
        if self.queue.full():
            with suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(snap)


class StreamHub:
    """One LISTEN connection per process, fanning out latest snapshots to SSE subscribers and telling the
    response cache which tickers changed (and when it cannot know)."""

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        *,
        max_spread: Decimal,
        cache: ResponseCache | None = None,
        refresh_key: Callable[[str], str] | None = None,
        channel: str = NOTIFY_CHANNEL,
        reconnect_max_seconds: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._pool = pool
        self._cache = cache
        self._refresh_key = refresh_key
        self._refresh: set[str] = set()
        self._max_spread = max_spread
        self._channel = channel
        self._reconnect_max = reconnect_max_seconds
        self._subs: set[Subscriber] = set()
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        self.notifications = 0

    # ---------------------------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="api-stream-listen"),
            asyncio.create_task(self._dispatch_loop(), name="api-stream-dispatch"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    # -------------------------------------------------------------------------------------------- subscribers
    def subscribe(self, tickers: Sequence[str]) -> Subscriber:
        sub = Subscriber(frozenset(tickers))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _wanted(self) -> set[str]:
        return set(itertools.chain.from_iterable(s.tickers for s in self._subs))

    async def latest(self, tickers: Sequence[str]) -> list[Snapshot]:
        async with self._pool.acquire() as conn:
            rows = await service.latest_snapshots(Reads(conn), tickers)
        return [self.snapshot(r) for r in rows]

    def snapshot(self, row: asyncpg.Record) -> Snapshot:
        p, src = implied_probability_with_source(row["yes_bid"], row["yes_ask"], row["last_price"], self._max_spread)
        return Snapshot.model_validate({**row, "implied_probability": p, "implied_probability_source": src})

    # ------------------------------------------------------------------------------------------------ internals
    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notifications += 1
        try:
            notice = parse_payload(payload)
        except BadNotificationError as exc:
            log.warning("stream_bad_notify_payload", error=str(exc), payload=payload[:200])
            return
        named = notice.tickers
        wanted = self._wanted()
        touched = {t for t in named if t in wanted}
        if self._cache is not None:
            self._cache.invalidate(named, notice.since)
            if self._refresh_key is not None:
                # Latest snapshots clients keep asking for are re-read now, in one query for the batch, rather
                # than by the next request of each (which would wait for it).
                key, cache = self._refresh_key, self._cache
                ahead = {t for t in named if cache.recently_sent(key(t), REFRESH_IF_SENT_WITHIN_SECONDS)}
                self._refresh |= ahead
                touched |= ahead
        if touched:
            self._pending |= touched
            self._wake.set()

    async def _listen_loop(self) -> None:
        delay = 0.2
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": "kalshi-analytics-api-listen"}
                )
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await conn.add_listener(self._channel, self._on_notify)
                self.listening.set()
                if self._cache is not None:
                    self._cache.listener_state(True)
                delay = 0.2
                if self._subs:  # we may have missed notifications while reconnecting
                    self._pending |= self._wanted()
                    self._wake.set()
                while not closed.is_set():
                    with suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), 10)
                    if not closed.is_set():
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), 5)  # notice a dead peer
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream_listener_down", error=repr(exc), retry_in=delay)
            finally:
                self.listening.clear()
                if self._cache is not None:
                    self._cache.listener_state(False)
                if conn is not None and not conn.is_closed():
                    with suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    async def _dispatch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            tickers, self._pending = sorted(self._pending), set()
            refresh, self._refresh = self._refresh, set()
            if not tickers or not (self._subs or refresh):
                continue
            cache = self._cache
            reads = {t: cache.begin_read(t) for t in refresh} if cache is not None else {}
            try:
                snaps = await self.latest(tickers)
            except Exception as exc:  # database trouble: keep the tickers for the next attempt
                log.warning("stream_fetch_failed", error=repr(exc))
                self._pending |= set(tickers)
                await asyncio.sleep(1)
                self._wake.set()
                continue
            finally:
                outdated = {t for t, token in reads.items() if cache is not None and cache.end_read(t, token)}
            for snap in snaps:
                for sub in list(self._subs):
                    if snap.ticker in sub.tickers:
                        sub.offer(snap)
                if snap.ticker in refresh and cache is not None and self._refresh_key is not None:
                    body = snap.__pydantic_serializer__.to_json(snap)  # what getLatestSnapshot sends
                    key = self._refresh_key(snap.ticker)
                    cache.replace(key, snap.ticker, body, outdated=snap.ticker in outdated)


def sse_event(snap: Snapshot) -> str:
    data = snap.__pydantic_serializer__.to_json(snap).decode()
    return f"event: snapshot\nid: {snap.ticker}@{snap.ts.isoformat()}\ndata: {data}\n\n"


router = APIRouter(prefix=API_PREFIX, tags=["stream"])


@router.get(
    "/stream",
    operation_id="streamMarketUpdates",
    summary="Server-Sent Events: the latest snapshot of each chosen ticker whenever the recorder writes one.",
    response_class=StreamingResponse,
    dependencies=[Depends(rate_limit("expensive"))],
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: snapshot` messages (data = Snapshot)"},
        **problem_responses(422, 429),
    },
)
async def stream(
    request: Request,
    tickers: Annotated[
        str, Query(min_length=1, max_length=20_000, pattern=NO_NUL, description="comma-separated market tickers")
    ],
) -> StreamingResponse:
    wanted = sorted({t.strip() for t in tickers.split(",") if t.strip()})
    if not wanted:
        raise InvalidInputError("name at least one ticker", field="query.tickers")
    if len(wanted) > MAX_STREAM_TICKERS:
        raise InvalidInputError(f"at most {MAX_STREAM_TICKERS} tickers per stream", field="query.tickers")
    hub: StreamHub = request.app.state.stream_hub
    heartbeat: float = request.app.state.settings.api_stream_heartbeat_seconds

    async def events() -> AsyncIterator[str]:
        sub = hub.subscribe(wanted)  # inside the generator: its finally always runs, so no subscriber leaks
        try:
            yield "retry: 3000\n: connected\n\n"
            for snap in await hub.latest(wanted):
                yield sse_event(snap)
            while True:
                try:
                    snap = await asyncio.wait_for(sub.queue.get(), heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield sse_event(snap)
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
