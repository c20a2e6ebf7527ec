"""Live market updates as Server-Sent Events, read from the event journal and woken by PostgreSQL LISTEN/NOTIFY.

Every committed change the stream tells about is a row of the journal (:mod:`kalshi_analytics.events`), written
in the change's own transaction with a database-wide id that increases in commit order. So a client gets each
change once, in commit order, with the same id from any API replica, and ``Last-Event-ID`` resumes from the
database for as long as the journal keeps the events (``STREAM_RESUME_SECONDS``); older, it gets a ``reset``.

Each API process holds ONE listening connection (:class:`StreamHub`). A commit notice wakes it; it reads the
journal after its position (one query per wake for all its clients, only the tickers someone follows) and hands
each client the events it wants. A client whose queue is full — too slow — or that joined while a read was under
way is marked *behind* and re-reads from the journal itself from its own position, so nothing is dropped. The
listener reconnects within a second of the database's return and then reads what it missed from the journal.
The same notices tell the response cache which tickers changed (and refresh the latest snapshots clients keep
asking for).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from kalshi_analytics import events
from kalshi_analytics.db.reads import Reads
from kalshi_analytics.errors import InvalidInputError, NotFoundError, UnavailableError
from kalshi_analytics.events import ALL_KINDS, MARKET_KINDS, EventKind, StoredEvent
from kalshi_analytics.logs import get_logger
from kalshi_analytics.markets import service
from kalshi_analytics.markets.events import StreamReady, StreamReset
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
LISTENER_DOWN_LOG_SECONDS = 60.0
#: A cached latest snapshot sent within this long is refreshed ahead when its market changes.
REFRESH_IF_SENT_WITHIN_SECONDS = 10.0
#: Events waiting for one client; past this it re-reads from the journal instead (nothing is dropped).
SUBSCRIBER_QUEUE = 2000
#: Events read from the journal per query.
PAGE = 1000
#: What clients are told to wait before reconnecting (SSE ``retry:``), ms.
RETRY_MS = 1000
#: The listener reconnects at least this often while the database is away; its connects give up after this.
RECONNECT_MAX_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 2.0
#: With clients connected, the journal is read at least this often even without a notice (a writer that forgot
#: to notify delays its events by this much, never loses them).
POLL_SECONDS = 5.0
DEFAULT_KINDS = tuple(k.value for k in EventKind if k in MARKET_KINDS)
_EVENT_ID = re.compile(r"^\d{1,18}$")


@dataclass(frozen=True, slots=True)
class Frame:
    """A journal event as the stream sends it (rendered once per process, shared by every client)."""

    id: int
    kind: str
    ticker: str | None
    text: str


def frame(ev: StoredEvent) -> Frame:
    if ev.payload is None:  # the row it stood for is gone (dropped with its partition): only its place is sent
        return Frame(ev.id, ev.kind, ev.ticker, f"id: {ev.id}\n: {ev.kind} no longer stored\n\n")
    return Frame(ev.id, ev.kind, ev.ticker, f"id: {ev.id}\nevent: {ev.kind}\ndata: {ev.payload}\n\n")


@dataclass(eq=False)
class Subscriber:
    """One client: what it follows, its queue, and whether it must re-read from the journal."""

    tickers: frozenset[str]
    kinds: frozenset[str]
    queue: asyncio.Queue[Frame | None] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE))
    behind: bool = True  # a new client first reads the journal from its starting point
    overflows: int = 0

    def wants(self, f: Frame) -> bool:
        return f.kind in self.kinds and (f.ticker is None or f.ticker in self.tickers)

    def offer(self, f: Frame) -> None:
        if self.behind:
            return  # it re-reads from the journal anyway
        if self.queue.full():
            self.overflows += 1
            self.fall_behind()
            return
        self.queue.put_nowait(f)

    def fall_behind(self) -> None:
        """Drop what is queued and wake the client, which then re-reads from the journal."""
        self.behind = True
        self._clear()
        self.queue.put_nowait(None)

    def catching_up(self) -> None:
        self.behind = False
        self._clear()

    def _clear(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


#: The hubs started in this process, for :func:`end_streams` (the server's shutdown knows no app).
_STARTED: weakref.WeakSet[StreamHub] = weakref.WeakSet()


def end_streams() -> int:
    """End every client stream of this process (their generators return; hubs keep running): called when the
    server begins to stop, which otherwise waits for responses to finish — and a stream never does. Clients
    reconnect with ``Last-Event-ID`` to whichever server answers next. Returns the streams ended."""
    return sum(hub.end_streams() for hub in list(_STARTED))


class StreamHub:
    """One LISTEN connection per process: reads the journal when woken and fans events out to subscribers, and
    tells the response cache which tickers changed (and when it cannot know)."""

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        *,
        max_spread: Decimal,
        cache: ResponseCache | None = None,
        refresh_key: Callable[[str], str] | None = None,
        channel: str = NOTIFY_CHANNEL,
        reconnect_max_seconds: float = RECONNECT_MAX_SECONDS,
        resume_seconds: float = 300.0,
    ) -> None:
        self._dsn = dsn
        self._pool = pool
        self._cache = cache
        self._refresh_key = refresh_key
        self._refresh: set[str] = set()
        self._max_spread = max_spread
        self._channel = channel
        self._reconnect_max = reconnect_max_seconds
        self.resume_seconds = resume_seconds
        self._subs: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.position: int | None = None  # the journal id up to which subscribers have been served
        self._notified = 0  # the highest last_event_id a notice announced
        self._last_error_log = 0.0
        self.listening = asyncio.Event()
        self.notifications = 0
        self.ending = False  # the server is stopping: streams end, new ones are refused

    # ---------------------------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="api-stream-listen"),
            asyncio.create_task(self._dispatch_loop(), name="api-stream-dispatch"),
        ]
        _STARTED.add(self)

    def end_streams(self) -> int:
        self.ending = True
        for sub in self._subs:
            sub.fall_behind()  # wakes it; its generator sees ``ending`` and returns
        return len(self._subs)

    async def stop(self) -> None:
        _STARTED.discard(self)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    # -------------------------------------------------------------------------------------------- subscribers
    def subscribe(self, tickers: Iterable[str], kinds: Iterable[str]) -> Subscriber:
        sub = Subscriber(frozenset(tickers), frozenset(kinds))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    # ------------------------------------------------------------------------------------ reads for a client
    async def unknown_tickers(self, tickers: Sequence[str]) -> list[str]:
        async with self._pool.acquire() as conn:
            return await service.unknown_tickers(Reads(conn), tickers)

    async def state(self, tickers: Sequence[str]) -> tuple[int, list[Snapshot]]:
        """The journal's head and the latest snapshot of each ticker as of it (one snapshot of the database)."""
        async with self._pool.acquire() as conn:
            head, rows = await service.stream_state(Reads(conn), tickers)
        return head, [self.snapshot(r) for r in rows]

    async def resume_refusal(self, after: int) -> str | None:
        async with self._pool.acquire() as conn:
            return await events.resume_refusal(conn, after, self.resume_seconds)

    async def read(self, after: int, tickers: Iterable[str]) -> tuple[int, list[Frame]]:
        """The head and the next page of events after ``after`` about ``tickers`` (or no market), rendered."""
        async with self._pool.acquire() as conn:
            head, rows = await events.read_after(
                conn,
                after,
                sorted(tickers),
                PAGE,
                payload_sql=service.STREAM_PAYLOAD_SQL,
                params={"max_spread": self._max_spread},
            )
        return head, [frame(r) for r in rows]

    async def latest(self, tickers: Sequence[str]) -> list[Snapshot]:
        async with self._pool.acquire() as conn:
            rows = await service.latest_snapshots(Reads(conn), tickers)
        return [self.snapshot(r) for r in rows]

    def snapshot(self, row: asyncpg.Record) -> Snapshot:
        p, src = implied_probability_with_source(row["yes_bid"], row["yes_ask"], row["last_price"], self._max_spread)
        fields = {k: row[k] for k in Snapshot.model_fields if k in row.keys()}  # noqa: SIM118 (a Record)
        return Snapshot.model_validate({**fields, "implied_probability": p, "implied_probability_source": src})

    # ------------------------------------------------------------------------------------------------ internals
    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notifications += 1
        try:
            notice = parse_payload(payload)
        except BadNotificationError as exc:
            log.warning("stream_bad_notify_payload", error=str(exc), payload=payload[:200])
            return
        if notice.last_event_id is not None:
            self._notified = max(self._notified, notice.last_event_id)
        named = notice.tickers
        if self._cache is not None and named:
            self._cache.invalidate(named, notice.since)
            if self._refresh_key is not None:
                # Latest snapshots clients keep asking for are re-read now, in one query for the batch, rather
                # than by the next request of each (which would wait for it).
                key, cache = self._refresh_key, self._cache
                self._refresh |= {t for t in named if cache.recently_sent(key(t), REFRESH_IF_SENT_WITHIN_SECONDS)}
        self._wake.set()

    async def _listen_loop(self) -> None:
        delay = 0.1
        down_logged = -LISTENER_DOWN_LOG_SECONDS
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    server_settings={"application_name": "kalshi-analytics-api-listen"},
                )
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await conn.add_listener(self._channel, self._on_notify)
                if not self.listening.is_set():
                    log.info("stream_listener_up")
                self.listening.set()
                if self._cache is not None:
                    self._cache.listener_state(True)
                delay = 0.1
                self._wake.set()  # notices sent while we were away are lost: read the journal to its head
                while not closed.is_set():
                    with suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), 5)
                    if not closed.is_set():
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), 5)  # notice a dead peer
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # One line when it goes down, then one a minute while it stays down (an outage is not a flood).
                now = time.monotonic()
                if self.listening.is_set() or now - down_logged >= LISTENER_DOWN_LOG_SECONDS:
                    down_logged = now
                    log.warning("stream_listener_down", error=repr(exc)[:300], retry_in=delay)
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
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS if self._subs else None)
            self._wake.clear()
            try:
                if self._refresh:
                    await self._refresh_cache()
                await self._deliver()
            except Exception as exc:  # database trouble: the position stays, try again shortly
                now = time.monotonic()
                if now - self._last_error_log > 10:
                    self._last_error_log = now
                    log.warning("stream_read_failed", error=repr(exc)[:300])
                await asyncio.sleep(0.5)
                self._wake.set()

    async def _deliver(self) -> None:
        """Hand every journal event after ``position`` to the subscribers that want it."""
        if self.position is None:
            async with self._pool.acquire() as conn:
                self.position = max(await events.head(conn), self._notified)
            for sub in self._subs:
                sub.fall_behind()  # they read from their own starting points
        while True:
            subs = set(self._subs)
            if not subs:
                # Nobody to serve: skip ahead (a client that joins later reads the journal from its own start).
                self.position = max(self.position, self._notified)
                return
            wanted = set(itertools.chain.from_iterable(s.tickers for s in subs))
            head, frames = await self.read(self.position, wanted)
            for sub in list(self._subs):
                if sub not in subs:
                    sub.fall_behind()  # joined during the read, whose tickers may not have included its own
                    continue
                for f in frames:
                    if sub.wants(f):
                        sub.offer(f)
            if len(frames) == PAGE:
                self.position = frames[-1].id
            else:
                self.position = max(self.position, head)
                return

    async def _refresh_cache(self) -> None:
        cache, key = self._cache, self._refresh_key
        refresh, self._refresh = sorted(self._refresh), set()
        if cache is None or key is None:
            return
        reads = {t: cache.begin_read(t) for t in refresh}
        try:
            snaps = await self.latest(refresh)
        finally:
            outdated = {t for t, token in reads.items() if cache.end_read(t, token)}
        for snap in snaps:
            body = snap.__pydantic_serializer__.to_json(snap)  # what getLatestSnapshot sends
            cache.replace(key(snap.ticker), snap.ticker, body, outdated=snap.ticker in outdated)


# ------------------------------------------------------------------------------------------------ SSE frames
def _control(kind: str, body: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {body}\n\n"


def ready_frame(position: int, resumed: bool, tickers: Sequence[str], kinds: Iterable[str]) -> str:
    ready = StreamReady(last_event_id=position, resumed=resumed, tickers=list(tickers), kinds=sorted(kinds))
    return _control("ready", ready.model_dump_json(), position)


def reset_frame(reason: str, last_event_id: str) -> str:
    return _control("reset", StreamReset(reason=reason, last_event_id=last_event_id[:100]).model_dump_json())


def state_frame(snap: Snapshot) -> str:
    # No id: the current state is not news, and a client that drops now resumes from before it.
    return _control(EventKind.SNAPSHOT, snap.__pydantic_serializer__.to_json(snap).decode())


async def _fresh_start(hub: StreamHub, tickers: Sequence[str], kinds: frozenset[str]) -> tuple[int, list[str]]:
    head, snaps = await hub.state(tickers)
    frames = [state_frame(s) for s in snaps] if EventKind.SNAPSHOT in kinds else []
    return head, [*frames, ready_frame(head, False, tickers, kinds)]


async def _frames(
    hub: StreamHub,
    *,
    tickers: Sequence[str],
    kinds: frozenset[str],
    position: int,
    opening: list[str],
    heartbeat: float,
) -> AsyncIterator[str]:
    """The stream of one client after its opening frames: journal catch-ups whenever it is behind, queued events
    otherwise, a keep-alive comment when idle. Every event sent has a higher id than the one before."""
    sub = hub.subscribe(tickers, kinds)  # inside the generator: its finally always runs, so no subscriber leaks
    try:
        yield f"retry: {RETRY_MS}\n" + "".join(opening)
        verified = True  # the position was just read or checked
        while not hub.ending:
            if sub.behind:
                sub.catching_up()
                try:
                    reason = None if verified else await hub.resume_refusal(position)
                    if reason is not None:
                        log.info("stream_client_reset", reason=reason, overflows=sub.overflows)
                        lost = position
                        position, opening = await _fresh_start(hub, tickers, kinds)
                        yield reset_frame(reason, str(lost)) + "".join(opening)
                    verified = False
                    while True:
                        head, frames = await hub.read(position, tickers)
                        out = [f.text for f in frames if sub.wants(f)]
                        if out:
                            yield "".join(out)
                        if len(frames) == PAGE:
                            position = frames[-1].id
                        else:
                            position = max(position, head)
                            break
                except Exception as exc:  # the database is away: keep the client, try again in a moment
                    log.warning("stream_catch_up_failed", error=repr(exc)[:300])
                    sub.fall_behind()
                    yield ": waiting for the database\n\n"
                    await asyncio.sleep(1)
                continue
            try:
                item = await asyncio.wait_for(sub.queue.get(), heartbeat)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None or item.id <= position:
                continue  # a wake-up to catch up, or an event the catch-up already sent
            position = item.id
            yield item.text
    finally:
        hub.unsubscribe(sub)


# ------------------------------------------------------------------------------------------------- the route
router = APIRouter(prefix=API_PREFIX, tags=["stream"])

#: (event, data, when) of every event the stream sends: the table of the route's OpenAPI description.
EVENT_TABLE = (
    (
        "snapshot",
        "`Snapshot` (as `getLatestSnapshot`)",
        "a snapshot was written (any source: poll, websocket, backfill)",
    ),
    ("trade", "`Trade` (as `listTrades`)", "a trade was recorded"),
    ("orderbook", "`OrderBook` (as `getOrderBook`, every level)", "a full order book was recorded"),
    (
        "market_status",
        "`{ticker, status, previous_status, result, settlement_value, settled_at, close_time}`",
        "the market's status or result changed (or it was first stored)",
    ),
    (
        "gap_opened",
        "`{key, ticker, channel, cause, gap_start, detected_at, seq_expected, seq_received}`",
        "the feed may have lost data (`ticker` null: a whole subscription)",
    ),
    (
        "gap_repaired",
        "`{key, ticker, gap_end, repaired_at, repair_method, unrepairable_reason}`",
        "a gap was repaired, or given up with a reason",
    ),
    (
        "backtest_finished",
        "`{id, status, strategy, strategy_version, finished_at, total_pnl, num_trades, error}`",
        "a backtest ended, done or failed (only with `kinds=backtest_finished`, which needs no tickers)",
    ),
    (
        "paper_fill",
        "`{session_id, ticker, side, action, price, count, fee, cash_after, ts}`",
        "a paper session filled an order (`ts`: the snapshot it filled on); as `listPaperSessionFills`",
    ),
    (
        "paper_position",
        "`{session_id, ticker, side, contracts, avg_price, mark}`",
        "a paper session's position in a market changed (a fill or a settlement)",
    ),
    (
        "paper_equity",
        "`{session_id, ts, equity, cash}`",
        "a paper session's latest equity point (one per runner commit that sampled any)",
    ),
    (
        "paper_session",
        "`{session_id, kind, at, ticker, …details}`",
        "something happened to a paper session: `kind` is `started`, `stopped`, `downtime`, `stale`, `repaired` "
        "or `settled`, as `listPaperSessionEvents`",
    ),
    ("ready", "`{last_event_id, resumed, tickers, kinds}`", "live from `last_event_id` (also its `id:`)"),
    (
        "reset",
        "`{reason, last_event_id}`",
        "`Last-Event-ID` cannot be resumed: refetch over REST; a fresh start follows",
    ),
)

STREAM_DESCRIPTION = (
    "Server-Sent Events about the chosen markets: every change the recorder commits, once, in commit order.\n\n"
    "**Events** (`event:` field; `data:` is one line of JSON):\n\n"
    "| event | data | when |\n| --- | --- | --- |\n"
    + "".join(f"| `{name}` | {data} | {when} |\n" for name, data, when in EVENT_TABLE)
    + """
Every data event has an `id:` that increases in commit order and is the same on every API replica. On connect
the latest snapshot of each ticker comes first (as `snapshot` events **without** an id: state, not news), then
`ready`. Reconnect with `Last-Event-ID` (browsers do it by themselves; or `?last_event_id=`) to get everything
committed since that id, without the state: possible for `STREAM_RESUME_SECONDS` (300 s by default); older, a
`reset` event and a fresh start follow. A `: keep-alive` comment comes every `API_STREAM_HEARTBEAT_SECONDS`.
`backtest_finished` and the `paper_*` events are about no market: they come only when named in `kinds`
(`?kinds=paper_fill,paper_position,paper_equity,paper_session` needs no tickers), for every session; filter on
`session_id`. Default `kinds`: """
    + ", ".join(DEFAULT_KINDS)
    + "."
)


def _split(value: str | None) -> list[str]:
    return sorted({v.strip() for v in (value or "").split(",") if v.strip()})


@router.get(
    "/stream",
    operation_id="streamMarketUpdates",
    summary="Server-Sent Events: every committed change of the chosen markets, once, in order, resumable.",
    description=STREAM_DESCRIPTION,
    response_class=StreamingResponse,
    dependencies=[Depends(rate_limit("expensive"))],
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the event stream (see the table above)"},
        **problem_responses(404, 422, 429),
    },
)
async def stream(
    request: Request,
    tickers: Annotated[
        str | None,
        Query(max_length=20_000, pattern=NO_NUL, description="comma-separated market tickers (stored markets)"),
    ] = None,
    kinds: Annotated[
        str | None,
        Query(max_length=500, pattern=NO_NUL, description=f"comma-separated event kinds of {sorted(ALL_KINDS)}"),
    ] = None,
    last_event_id: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description="resume after this id (as `Last-Event-ID`)")
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", include_in_schema=False, max_length=100, pattern=NO_NUL)
    ] = None,
) -> StreamingResponse:
    chosen = frozenset(_split(kinds) or DEFAULT_KINDS)
    if unknown := sorted(chosen - ALL_KINDS):
        raise InvalidInputError(
            f"unknown event kind(s) {', '.join(unknown)}; choose among {', '.join(sorted(ALL_KINDS))}",
            field="query.kinds",
        )
    wanted = _split(tickers)
    if not wanted and chosen & MARKET_KINDS:
        raise InvalidInputError("name at least one ticker for market events", field="query.tickers")
    if len(wanted) > MAX_STREAM_TICKERS:
        raise InvalidInputError(f"at most {MAX_STREAM_TICKERS} tickers per stream", field="query.tickers")
    hub: StreamHub = request.app.state.stream_hub
    heartbeat: float = request.app.state.settings.api_stream_heartbeat_seconds
    if hub.ending:
        raise UnavailableError("this API server is stopping; reconnect", retry_after=1)
    if wanted and (missing := await hub.unknown_tickers(wanted)):
        raise NotFoundError(f"unknown market(s): {', '.join(missing[:20])}", field="query.tickers")

    # The header is what a browser's EventSource sends on reconnect: it wins over the URL it reconnects to.
    resume = last_event_id_header if last_event_id_header is not None else last_event_id
    opening: list[str] = []
    position: int | None = None
    if resume is not None:
        after = int(resume) if _EVENT_ID.match(resume.strip()) else None
        reason = "Last-Event-ID is not an event id of this stream" if after is None else None
        if after is not None:
            reason = await hub.resume_refusal(after)
        if reason is None and after is not None:
            position = after
            opening.append(ready_frame(after, True, wanted, chosen))
        else:
            opening.append(reset_frame(reason or "", resume))
    if position is None:
        position, start = await _fresh_start(hub, wanted, chosen)
        opening += start

    return StreamingResponse(
        _frames(hub, tickers=wanted, kinds=chosen, position=position, opening=opening, heartbeat=heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
