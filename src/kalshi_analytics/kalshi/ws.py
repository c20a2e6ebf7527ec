"""Async WebSocket client for Kalshi's market-data channels (KALSHI_API.md §5).

Three layers, cryptofeed-style:

- transport: one ``aiohttp`` WebSocket connection (signed upgrade, library ping/pong), reconnected with exponential
  backoff + jitter (reset after a healthy period), restarted by a watchdog when silent for too long. aiohttp
  rather than ``websockets``: its frame reader is compiled, and framing was the largest single cost of the
  recorder's ingest (bench/README.md §3: ~6 µs a frame in ``websockets``, ~2 µs here);
- parser: :class:`FrameDispatcher` turns each text frame into a domain message (``wire.parse_ws_message``),
  answers pending commands by id, tracks ``seq`` per ``sid`` (:class:`SeqTracker`) and rejects bad frames (not
  parseable, holding impossible values per ``validation.py``, refused by the consumer's ``admit`` check, or
  oversized), which are counted by reason, kept in ``bad_frames`` and skipped — bad input never stops the loop;
- consumer: ``async for event in client.events()`` yields domain messages plus control events
  (:class:`SeqGap`, :class:`Disconnected`, :class:`Reconnected`).

Subscriptions are declarative: :meth:`KalshiWsClient.subscribe` returns a :class:`Subscription` handle that the
client re-creates on every new connection (new sids; seqs restart). Ticker lists are sharded so that no command
carries more than ``max_tickers_per_command`` tickers; each shard is its own sid (one channel per command, so
every ``subscribe`` has exactly one ``subscribed`` answer, and ``update_subscription`` names exactly one sid).

Example::

    async with KalshiWsClient.from_settings(settings) as ws:
        book_sub = await ws.subscribe("orderbook_delta", tickers)
        await ws.subscribe("ticker")
        async for event in ws.events():
            if isinstance(event, SeqGap):
                await ws.request_snapshot(book_sub)
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import ClientWebSocketResponse, WSMsgType

from kalshi_analytics.kalshi.credentials import load_signer
from kalshi_analytics.kalshi.domain import (
    CommandError,
    CommandOk,
    Disconnected,
    Reconnected,
    SeqGap,
    Subscribed,
    SubscriptionInfo,
    Unsubscribed,
    WsData,
    WsEvent,
    WsResponse,
)
from kalshi_analytics.kalshi.errors import (
    KalshiProtocolError,
    KalshiWsCommandError,
    KalshiWsConnectionError,
    preview,
)
from kalshi_analytics.kalshi.signing import KalshiSigner
from kalshi_analytics.kalshi.status import Channel
from kalshi_analytics.kalshi.validation import Reason, problem
from kalshi_analytics.kalshi.wire import parse_ws_message
from kalshi_analytics.logs import get_logger

if TYPE_CHECKING:
    from kalshi_analytics.config import Settings

log = get_logger(__name__)

DEFAULT_MAX_TICKERS_PER_COMMAND = 500
MESSAGE_TOO_BIG = 1009  # the WebSocket close code


# Memory bound of one frame, as a multiple of ``max_frame_bytes``: up to it an oversized frame is read and a prefix
# kept; beyond it only the library's close tells us one came.
OVERSIZE_FACTOR = 4

# Frames or events handled back to back before yielding to the event loop (fairness for other tasks).
YIELD_EVERY = 64

# A tuple, not ``A | B``: isinstance of a union builds the union on every call (3x slower, once per frame).
_RESPONSE_TYPES = (Subscribed, CommandOk, Unsubscribed, CommandError)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------------------ helpers
def shard_tickers(tickers: Iterable[str], max_per_command: int = DEFAULT_MAX_TICKERS_PER_COMMAND) -> list[list[str]]:
    """Split tickers (deduplicated, order kept) into chunks of at most ``max_per_command``."""
    if max_per_command < 1:
        raise ValueError("max_per_command must be >= 1")
    unique = list(dict.fromkeys(tickers))
    return [unique[i : i + max_per_command] for i in range(0, len(unique), max_per_command)]


class SeqTracker:
    """Per-``sid`` sequence check. The first frame of a sid is its baseline; ``seq != last + 1`` is a gap.

    The frame that reveals a gap becomes the new baseline (and is still delivered). Command answers that carry a
    ``seq`` (``ok``/``unsubscribed``) move the baseline *softly*: whether they consume a number is undocumented,
    so the next data frame may follow either the answer's seq or the previous one without a gap.
    Call :meth:`reset` on reconnect (sids and seqs restart) and :meth:`forget` on unsubscribe.
    """

    __slots__ = ("_last", "_soft")

    def __init__(self) -> None:
        self._last: dict[int, int] = {}
        self._soft: dict[int, int] = {}

    def observe(self, sid: int, seq: int) -> tuple[int, int] | None:
        """Record a data frame; returns ``(expected, received)`` when it does not follow the previous one."""
        last = self._last.get(sid)
        self._last[sid] = seq
        soft = self._soft.pop(sid, None)
        if last is None or seq == last + 1 or (soft is not None and seq == soft + 1):
            return None
        return (last + 1, seq)

    def advance(self, sid: int, seq: int) -> None:
        """A command answer carried ``seq``: accept it as baseline without reporting a gap."""
        last = self._last.get(sid)
        if last is None:
            self._last[sid] = seq
        elif seq > last:
            self._soft[sid] = last
            self._last[sid] = seq

    def last(self, sid: int) -> int | None:
        return self._last.get(sid)

    def forget(self, sid: int) -> None:
        self._last.pop(sid, None)
        self._soft.pop(sid, None)

    def reset(self) -> None:
        self._last.clear()
        self._soft.clear()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: exponential with equal jitter, capped; the attempt count resets after a healthy period.

    ``delay(n)`` is uniform in ``[c/2, c]`` with ``c = min(maximum, initial * factor**n)``.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    healthy_after: float = 60.0
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int) -> float:
        cap = min(self.maximum, self.initial * self.factor ** max(0, attempt))
        return cap / 2 + self.rng() * cap / 2


@dataclass(slots=True)
class WsCounters:
    """Running totals of the feed, for metrics and tests."""

    frames: int = 0
    messages: int = 0
    malformed_json: int = 0
    unknown_type: int = 0
    invalid: int = 0
    #: Every rejected frame by reason (:class:`~kalshi_analytics.kalshi.validation.Reason`), the three above included.
    rejected: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    command_errors: int = 0
    unsolicited_errors: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    watchdog_restarts: int = 0

    @property
    def bad_frames(self) -> int:
        return sum(self.rejected.values())


class EventBuffer:
    """The reader → consumer handoff, in batches: the reader appends, the consumer takes everything at once.

    An ``asyncio.Queue`` costs ~1.5 µs an item in ``put``/``get`` and the generator around them; a list swapped
    whole costs an ``append``. ``limit`` bounds what the reader may add before the consumer takes it (the
    consumer's batch in hand is at most as long), so memory stays bounded and a slow consumer stops the reading
    (backpressure) instead of dropping anything.
    """

    __slots__ = ("_items", "_ready", "_room", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: list[Any] = []
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.limit

    def push(self, item: Any) -> None:
        """Add without waiting (also past ``limit``: only for items that must not wait, like the end marker)."""
        self._items.append(item)
        if len(self._items) == 1:
            self._ready.set()

    async def put(self, item: Any) -> None:
        """Add, first waiting for room while the buffer is full."""
        while self.full():
            self._room.clear()
            await self._room.wait()
        self.push(item)

    async def take(self) -> list[Any]:
        """Everything added so far, waiting while there is nothing."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        items, self._items = self._items, []
        self._room.set()
        return items


# ----------------------------------------------------------------------------------------------------- parser
class FrameDispatcher:
    """Parser stage: raw frame → events, plus command futures and seq tracking. No I/O, so it is unit-testable."""

    def __init__(self, counters: WsCounters | None = None, *, keep_bad_frames: int = 20) -> None:
        self.counters = counters or WsCounters()
        self.tracker = SeqTracker()
        self.channels: dict[int, str] = {}
        self.pending: dict[int, asyncio.Future[WsResponse]] = {}
        #: The last bad frames, raw text kept in full (the log gets a truncated preview).
        self.bad_frames: deque[KalshiProtocolError] = deque(maxlen=keep_bad_frames)
        #: The consumer's own check of a sane data message (e.g. "a ticker I track"): ``(reason, detail)`` rejects.
        self.admit: Callable[[WsData], tuple[str, str] | None] | None = None

    def handle(self, raw: str | bytes, received_at: datetime | None = None) -> list[WsEvent]:
        """Events to deliver for one frame (empty when it was bad or answered a pending command)."""
        c = self.counters
        c.frames += 1
        try:
            msg = parse_ws_message(raw, received_at)
        except Exception as err:  # bad input must never stop the loop
            exc = err if isinstance(err, KalshiProtocolError) else KalshiProtocolError(f"unparseable ({err!r})", raw)
            self.reject(exc)
            return []
        if isinstance(msg, _RESPONSE_TYPES):
            return self._response(msg)
        sid, seq = msg.sid, msg.seq
        out: list[WsEvent] = []
        if sid is not None and seq is not None:
            # A rejected frame still took its seq: tracked first, so the next good frame is not a false gap.
            gap = self.tracker.observe(sid, seq)
            if gap is not None:
                c.gaps += 1
                out.append(SeqGap(sid=sid, channel=self.channels.get(sid), expected=gap[0], received=gap[1], at=_now()))
        verdict: tuple[str, str] | None = problem(msg, received_at)
        if verdict is None and self.admit is not None:
            verdict = self.admit(msg)
        if verdict is not None:
            self.reject(KalshiProtocolError(verdict[1], raw, kind=verdict[0]))
            return out
        c.messages += 1
        out.append(msg)
        return out

    def reject(self, exc: KalshiProtocolError) -> None:
        """Count and keep a frame that will not be delivered; only the first of each kind is logged at WARNING
        (a flood of bad frames must not bury the log; the recorder logs summaries)."""
        c = self.counters
        if exc.kind == KalshiProtocolError.MALFORMED_JSON:
            c.malformed_json += 1
        elif exc.kind == KalshiProtocolError.UNKNOWN_TYPE:
            c.unknown_type += 1
        elif exc.kind == KalshiProtocolError.INVALID:
            c.invalid += 1
        first = exc.kind not in c.rejected
        c.rejected[exc.kind] = c.rejected.get(exc.kind, 0) + 1
        self.bad_frames.append(exc)
        (log.warning if first else log.debug)(
            "kalshi_ws_bad_frame", kind=exc.kind, reason=exc.reason, raw=preview(exc.raw, 300)
        )

    def _response(self, msg: WsResponse) -> list[WsEvent]:
        if isinstance(msg, Subscribed):
            self.channels[msg.sid] = msg.channel
        elif isinstance(msg, CommandOk | Unsubscribed) and msg.sid is not None and msg.seq is not None:
            self.tracker.advance(msg.sid, msg.seq)
        if isinstance(msg, CommandError):
            self.counters.command_errors += 1
        fut = self.pending.get(msg.id) if msg.id else None
        if fut is not None and not fut.done():
            if isinstance(msg, CommandError):
                fut.set_exception(KalshiWsCommandError(msg.code, msg.message, command_id=msg.id))
            else:
                fut.set_result(msg)
            return []
        if isinstance(msg, CommandError):
            self.counters.unsolicited_errors += 1
            log.warning("kalshi_ws_error", code=msg.code, message=msg.message, id=msg.id)
        return [msg]

    def fail_pending(self, reason: str) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(KalshiWsConnectionError(reason))
        self.pending.clear()

    def new_connection(self) -> None:
        """Sids and seqs restart on a new connection."""
        self.tracker.reset()
        self.channels.clear()


# ------------------------------------------------------------------------------------------------ subscriptions
@dataclass(slots=True)
class _Shard:
    tickers: list[str] | None
    sid: int | None = None
    generation: int = -1


class Subscription:
    """Handle of one logical subscription (one channel, optional tickers), re-made on every connection."""

    def __init__(self, key: int, channel: str, params: dict[str, Any]) -> None:
        self.key = key
        self.channel = channel
        self.params = params
        self._shards: list[_Shard] = []

    @property
    def sids(self) -> tuple[int, ...]:
        """The current connection's sids of this subscription (empty while disconnected)."""
        return tuple(s.sid for s in self._shards if s.sid is not None)

    @property
    def tickers(self) -> tuple[str, ...] | None:
        """The subscribed tickers, or ``None`` for an all-markets subscription."""
        if any(s.tickers is None for s in self._shards):
            return None
        return tuple(t for s in self._shards for t in (s.tickers or ()))

    def _command_params(self, shard: _Shard) -> dict[str, Any]:
        params: dict[str, Any] = {"channels": [self.channel], **self.params}
        if shard.tickers is not None:
            params["market_tickers"] = list(shard.tickers)
        return params

    def __repr__(self) -> str:
        n = self.tickers
        return f"Subscription({self.channel!r}, tickers={'all' if n is None else len(n)}, sids={self.sids})"


_CLOSED: Any = object()


class KalshiWsClient:
    """Kalshi market-data WebSocket client: commands, seq checks, reconnects, one stream of events."""

    def __init__(
        self,
        url: str,
        *,
        signer: KalshiSigner | None = None,
        max_tickers_per_command: int = DEFAULT_MAX_TICKERS_PER_COMMAND,
        ping_interval: float | None = 10.0,
        open_timeout: float = 10.0,
        command_timeout: float = 10.0,
        watchdog_timeout: float | None = 60.0,
        backoff: Backoff | None = None,
        queue_size: int = 10_000,
        max_frame_bytes: int = 16 * 2**20,
        oversize_keep_bytes: int = 64 * 2**10,
    ) -> None:
        """
        Args:
            url: the WebSocket URL (``.../trade-api/ws/v2``).
            signer: signs the upgrade (``GET /trade-api/ws/v2``) when given; re-signed on every reconnect.
            max_tickers_per_command: shard size for ``market_tickers`` lists.
            ping_interval: keep-alive ping period; no pong within half of it closes the connection (Kalshi also
                pings every 10 s).
            watchdog_timeout: restart a connection that delivered no frame for this long (``None`` = off).
            backoff: reconnect delay policy.
            queue_size: events buffered for the consumer; when full, reading pauses (backpressure, no drops).
            max_frame_bytes: a longer frame is rejected (``oversized``; its first ``oversize_keep_bytes`` kept) and
                the connection is restarted, so the usual disconnect repair covers whatever it held. Frames past
                ``OVERSIZE_FACTOR`` times that are refused by aiohttp itself (close 1009) before we can read
                them: counted too, with nothing to keep.
        """
        self.url = url
        self.signer = signer
        self.max_tickers_per_command = max_tickers_per_command
        self.ping_interval = ping_interval
        self.open_timeout = open_timeout
        self.command_timeout = command_timeout
        self.watchdog_timeout = watchdog_timeout
        self.backoff = backoff or Backoff()
        self.max_frame_bytes = max_frame_bytes
        self.oversize_keep_bytes = oversize_keep_bytes
        self.counters = WsCounters()
        self.dispatcher = FrameDispatcher(self.counters)
        self._buffer = EventBuffer(queue_size)
        self._subs: dict[int, Subscription] = {}
        self._sub_lock = asyncio.Lock()
        self._next_id = 0
        self._next_key = 0
        self._ws: ClientWebSocketResponse | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._resubscriber: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: BaseException | None = None
        self._last_frame = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> KalshiWsClient:
        """Client for ``settings.ws_url``, signed like the REST client (``signer=`` reuses a loaded key)."""
        if "signer" not in kwargs:
            kwargs["signer"] = load_signer(settings)
        kwargs.setdefault("max_tickers_per_command", settings.kalshi_ws_tickers_per_command)
        kwargs.setdefault("watchdog_timeout", settings.kalshi_ws_watchdog_seconds)
        return cls(settings.ws_url, **kwargs)

    # ------------------------------------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> KalshiWsClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start connecting in the background (idempotent)."""
        if self._runner is None:
            self._closing = False
            self._runner = asyncio.create_task(self._run(), name="kalshi-ws")

    async def close(self) -> None:
        """Close the connection, stop reconnecting, end :meth:`events`."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in (self._resubscriber, self._runner):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._runner = self._resubscriber = None
        self._ws = None
        self._connected.clear()
        self.dispatcher.fail_pending("client closed")
        self._push_closed()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def wait_connected(self) -> None:
        """Wait until a connection is up (wrap in ``asyncio.timeout`` to bound it)."""
        await self._connected.wait()

    async def events(self) -> AsyncIterator[WsEvent]:
        """The single stream of domain messages and control events, until :meth:`close`."""
        take = self._buffer.take
        n = 0
        while True:
            for item in await take():
                if item is _CLOSED:
                    if self._failure is not None:
                        raise self._failure
                    return
                yield item
                n += 1
                if n % YIELD_EVERY == 0:
                    # A batch in hand never suspends: give the loop a turn, or the writer's round trips starve
                    # behind thousands of frames.
                    await asyncio.sleep(0)

    @property
    def backlog(self) -> int:
        """Events read but not yet taken by the consumer."""
        return len(self._buffer)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subs.values())

    # ------------------------------------------------------------------------------------------------ commands
    async def subscribe(
        self, channel: Channel | str, market_tickers: Sequence[str] | None = None, **params: Any
    ) -> Subscription:
        """Subscribe one channel (all markets when ``market_tickers`` is None), sharded into several sids if needed.

        Extra ``params`` go into the command (e.g. ``send_initial_snapshot=True``); ``orderbook_delta`` always
        sends ``use_yes_price`` explicitly (default False: NO levels in NO-leg prices). Raises
        :class:`KalshiWsCommandError` when Kalshi rejects it; if the connection is down (or drops meanwhile),
        the subscription is made as soon as a connection is up.
        """
        channel = str(channel)
        if channel == Channel.ORDERBOOK_DELTA:
            params.setdefault("use_yes_price", False)
        async with self._sub_lock:
            self._next_key += 1
            sub = Subscription(self._next_key, channel, params)
            if market_tickers is None:
                sub._shards.append(_Shard(None))
            else:
                sub._shards.extend(
                    _Shard(chunk) for chunk in shard_tickers(market_tickers, self.max_tickers_per_command)
                )
            self._subs[sub.key] = sub
            try:
                await self._activate(sub)
            except KalshiWsCommandError:
                await self._deactivate(sub)
                del self._subs[sub.key]
                raise
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        """End a subscription (every shard's sid)."""
        async with self._sub_lock:
            self._subs.pop(sub.key, None)
            await self._deactivate(sub)

    async def add_markets(self, sub: Subscription, tickers: Sequence[str]) -> None:
        """Add tickers to a subscription: fill its shards (``update_subscription`` add_markets), then new shards."""
        async with self._sub_lock:
            if sub.tickers is None:
                return
            known = set(sub.tickers)
            new = [t for t in dict.fromkeys(tickers) if t not in known]
            for shard in sub._shards:
                room = self.max_tickers_per_command - len(shard.tickers or ())
                if not new or room <= 0 or shard.tickers is None:
                    continue
                batch, new = new[:room], new[room:]
                shard.tickers.extend(batch)
                if self._is_active(shard):
                    await self._update(shard, "add_markets", batch)
            for chunk in shard_tickers(new, self.max_tickers_per_command):
                sub._shards.append(_Shard(chunk))
            await self._activate(sub)

    async def remove_markets(self, sub: Subscription, tickers: Sequence[str]) -> None:
        """Remove tickers (``delete_markets``); a shard left empty is unsubscribed."""
        async with self._sub_lock:
            drop = set(tickers)
            for shard in list(sub._shards):
                if shard.tickers is None:
                    continue
                gone = [t for t in shard.tickers if t in drop]
                if not gone:
                    continue
                shard.tickers = [t for t in shard.tickers if t not in drop]
                if not shard.tickers:
                    await self._unsubscribe_shard(shard)
                    sub._shards.remove(shard)
                elif self._is_active(shard):
                    await self._update(shard, "delete_markets", gone)

    async def request_snapshot(self, sub: Subscription, tickers: Sequence[str] | None = None) -> None:
        """Ask for fresh ``orderbook_snapshot`` frames (``update_subscription`` get_snapshot), per shard."""
        wanted = set(tickers) if tickers is not None else None
        for shard in list(sub._shards):
            if not self._is_active(shard) or shard.tickers is None:
                continue
            batch = [t for t in shard.tickers if wanted is None or t in wanted]
            if batch:
                await self._update(shard, "get_snapshot", batch)

    async def list_subscriptions(self) -> tuple[SubscriptionInfo, ...]:
        """The server's view of this connection's subscriptions."""
        resp = await self._command("list_subscriptions", None)
        return (resp.subscriptions or ()) if isinstance(resp, CommandOk) else ()

    # -------------------------------------------------------------------------------------------- internals
    def _is_active(self, shard: _Shard) -> bool:
        return shard.sid is not None and shard.generation == self._generation and self._ws is not None

    async def _activate(self, sub: Subscription) -> None:
        """Subscribe every shard not yet subscribed on the current connection (no-op while disconnected)."""
        for shard in sub._shards:
            gen = self._generation
            if self._ws is None or shard.generation == gen:
                continue
            shard.generation, shard.sid = gen, None
            try:
                resp = await self._command("subscribe", sub._command_params(shard))
            except KalshiWsConnectionError as exc:
                shard.generation = -1
                log.info("kalshi_ws_subscribe_deferred", channel=sub.channel, reason=str(exc))
                return
            except KalshiWsCommandError:
                shard.generation = -1
                raise
            if gen != self._generation:  # the connection changed under us; the new one re-subscribes
                continue
            sid = resp.sid if isinstance(resp, Subscribed | CommandOk) else None
            shard.sid = sid
            if sid is not None:
                self.dispatcher.channels.setdefault(sid, sub.channel)

    async def _deactivate(self, sub: Subscription) -> None:
        for shard in sub._shards:
            await self._unsubscribe_shard(shard)

    async def _unsubscribe_shard(self, shard: _Shard) -> None:
        if self._is_active(shard) and shard.sid is not None:
            sid = shard.sid
            with contextlib.suppress(KalshiWsConnectionError):
                await self._command("unsubscribe", {"sids": [sid]})
            self.dispatcher.tracker.forget(sid)
        shard.sid, shard.generation = None, -1

    async def _update(self, shard: _Shard, action: str, tickers: list[str]) -> None:
        """``update_subscription`` for one sid; a dropped connection is not an error (reconnect re-applies state)."""
        for chunk in shard_tickers(tickers, self.max_tickers_per_command):
            params = {"sids": [shard.sid], "market_tickers": chunk, "action": action}
            try:
                await self._command("update_subscription", params)
            except KalshiWsConnectionError as exc:
                log.info("kalshi_ws_update_deferred", action=action, sid=shard.sid, reason=str(exc))
                return

    async def _command(self, cmd: str, params: dict[str, Any] | None) -> WsResponse:
        """Send one command and wait for the answer with the same id (errors raise)."""
        ws = self._ws
        if ws is None:
            raise KalshiWsConnectionError(f"{cmd}: not connected")
        self._next_id += 1
        cid = self._next_id
        fut: asyncio.Future[WsResponse] = asyncio.get_running_loop().create_future()
        self.dispatcher.pending[cid] = fut
        payload: dict[str, Any] = {"id": cid, "cmd": cmd}
        if params is not None:
            payload["params"] = params
        try:
            await ws.send_str(json.dumps(payload))
            async with asyncio.timeout(self.command_timeout):
                return await fut
        except TimeoutError:
            raise KalshiWsConnectionError(f"{cmd} (id {cid}): no answer within {self.command_timeout} s") from None
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise KalshiWsConnectionError(f"{cmd} (id {cid}): connection closed ({exc})") from None
        finally:
            self.dispatcher.pending.pop(cid, None)

    async def _resubscribe_all(self) -> None:
        async with self._sub_lock:
            for sub in list(self._subs.values()):
                try:
                    await self._activate(sub)
                except KalshiWsCommandError as exc:
                    log.error("kalshi_ws_resubscribe_failed", channel=sub.channel, code=exc.code, error=exc.message)
                    await self._emit(CommandError(id=exc.command_id, code=exc.code, message=exc.message))

    async def _emit(self, event: WsEvent) -> None:
        await self._buffer.put(event)

    def _push_closed(self) -> None:
        self._buffer.push(_CLOSED)

    # -------------------------------------------------------------------------------------------- transport
    async def _connect(self, session: aiohttp.ClientSession) -> ClientWebSocketResponse:
        headers = self.signer.ws_headers() if self.signer else {}
        async with asyncio.timeout(self.open_timeout):
            return await session.ws_connect(
                self.url,
                headers=headers,
                # aiohttp pings every ``heartbeat`` s and closes when no pong comes within half of it.
                heartbeat=self.ping_interval,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                max_msg_size=self.max_frame_bytes * OVERSIZE_FACTOR,
            )

    async def _run(self) -> None:
        try:
            await self._run_forever()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not bad input: surface it to the consumer instead of hanging it
            log.exception("kalshi_ws_runner_crashed")
            self._failure = exc
            self._push_closed()

    async def _run_forever(self) -> None:
        async with aiohttp.ClientSession() as session:
            await self._connect_forever(session)

    async def _connect_forever(self, session: aiohttp.ClientSession) -> None:
        attempt = 0
        down_since: float | None = None
        first = True
        while not self._closing:
            try:
                ws = await self._connect(session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, DNS, TLS, 401/403 handshake, timeout: all retried with backoff
                self.counters.connect_failures += 1
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("kalshi_ws_connect_failed", error=f"{type(exc).__name__}: {exc}"[:300], retry_in=delay)
                await asyncio.sleep(delay)
                continue
            up_at = time.monotonic()
            self.counters.connects += 1
            self._generation += 1
            self.dispatcher.new_connection()
            self._ws = ws
            log.info("kalshi_ws_connected", url=self.url, generation=self._generation)
            if not first:
                down = time.monotonic() - down_since if down_since is not None else None
                await self._emit(Reconnected(at=_now(), attempt=attempt, down_seconds=down))
            first = False
            self._connected.set()
            self._resubscriber = asyncio.create_task(self._resubscribe_all(), name="kalshi-ws-resubscribe")
            try:
                reason = await self._read(ws)
            finally:
                self._connected.clear()
                self._ws = None
                self.dispatcher.fail_pending("connection lost")
                if self._resubscriber is not None:
                    self._resubscriber.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await self._resubscriber
                    self._resubscriber = None
                for sub in self._subs.values():
                    for shard in sub._shards:
                        shard.sid, shard.generation = None, -1
            if self._closing:
                return
            down_since = time.monotonic()
            self.counters.disconnects += 1
            log.warning("kalshi_ws_disconnected", reason=reason)
            await self._emit(Disconnected(at=_now(), reason=reason))
            attempt = 0 if down_since - up_at >= self.backoff.healthy_after else attempt + 1
            await asyncio.sleep(self.backoff.delay(attempt))

    async def _read(self, ws: ClientWebSocketResponse) -> str:
        """Pump frames into the dispatcher until the connection ends; returns why it ended."""
        handle = self.dispatcher.handle
        buffer = self._buffer
        text, binary = WSMsgType.TEXT, WSMsgType.BINARY
        silent = asyncio.Event()
        # One watchdog task per connection, not a timeout around every receive(): that costs ~5 µs a frame.
        watchdog = asyncio.create_task(self._watchdog(ws, silent)) if self.watchdog_timeout else None
        frames = 0
        try:
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is not text and kind is not binary:
                    return self._ended(ws, msg, silent)
                raw = msg.data
                self._last_frame = time.monotonic()
                if len(raw) > self.max_frame_bytes:
                    self._oversized(raw[: self.oversize_keep_bytes], f"frame of {len(raw)} bytes")
                    with contextlib.suppress(Exception):
                        await ws.close(code=MESSAGE_TOO_BIG, message=b"frame too big")
                    return f"oversized frame: {len(raw)} bytes"
                frames += 1
                if frames % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # buffered frames never suspend receive(): let other tasks run
                for event in handle(raw, _now()):
                    if buffer.full():  # backpressure: stop reading until the consumer catches up
                        await buffer.put(event)
                    else:
                        buffer.push(event)
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _ended(self, ws: ClientWebSocketResponse, msg: aiohttp.WSMessage, silent: asyncio.Event) -> str:
        """Why the connection ended, from the message that ended it (close, error or closed)."""
        if silent.is_set():
            return f"watchdog: no frame for {self.watchdog_timeout} s"
        if msg.type is WSMsgType.ERROR:
            exc = msg.data
            if isinstance(exc, aiohttp.WebSocketError) and exc.code == MESSAGE_TOO_BIG:
                # Past the library's bound: it refused the frame before we could read it (nothing to keep).
                self._oversized("", str(exc))
                return f"oversized frame: {exc}"
            return f"error: {type(exc).__name__}: {exc}"[:300]
        if msg.type is WSMsgType.CLOSE:
            return f"closed: {msg.data} {msg.extra or ''}".strip()
        return f"closed: {ws.close_code}"

    def _oversized(self, prefix: str | bytes, what: str) -> None:
        self.counters.frames += 1
        detail = f"{what} over the {self.max_frame_bytes}-byte limit; connection restarted"
        if prefix:
            detail += f"; first {len(prefix)} kept"
        self.dispatcher.reject(KalshiProtocolError(detail, prefix, kind=Reason.OVERSIZED))

    async def _watchdog(self, ws: ClientWebSocketResponse, silent: asyncio.Event) -> None:
        """Close a connection that has delivered no frame for ``watchdog_timeout`` seconds."""
        limit = float(self.watchdog_timeout or 0)
        self._last_frame = time.monotonic()
        while True:
            idle = time.monotonic() - self._last_frame
            if idle >= limit:
                self.counters.watchdog_restarts += 1
                silent.set()
                log.warning("kalshi_ws_watchdog_restart", silent_seconds=round(idle, 1))
                with contextlib.suppress(Exception):
                    await ws.close(code=1000, message=b"watchdog")
                return
            await asyncio.sleep(min(limit - idle, limit / 4) + 0.01)
