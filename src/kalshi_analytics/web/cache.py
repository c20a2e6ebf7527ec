"""A per-process cache of rendered read responses, kept true by the recorder's commit notifications.

Every read the API serves is a pure function of what the recorder has committed (and, for windows that
default to "now", of the clock). The recorder's sink sends a commit notice (:mod:`kalshi_analytics.notifications`) in
the commit that writes a market's rows, and each API process already LISTENs for it (the live stream). So an
answer built from a ticker's rows stays right until a notification names that ticker, and the API can keep
the answer — bytes, gzip form and ETag — and send it again instead of asking PostgreSQL.

The rule, per entry:

* it is reused for ``fresh_seconds`` after it was built whatever happened meanwhile (the bound on staleness:
  without it a market list, which depends on every ticker, would be rebuilt on every commit of a busy
  recorder; set 0 for answers that are never older than the last notification);
* after that, only while nothing it depends on has changed — no notification for its ticker (or, for
  entries that depend on all markets, none at all) since the build started — the listener was connected the
  whole time, and it is younger than ``max_seconds``;
* an answer about a window that ends at a fixed time (history with ``end``, a book ``at``) has a *horizon*:
  a notification whose ``since`` — the earliest minute of the time series that commit wrote — is at or past
  the horizon cannot have changed it, so a recorder appending live data leaves yesterday's candles cached;
* answers whose window is relative to the clock (``end`` omitted, or a time given as ``now`` or ``-1d``) are
  reused for ``fresh_seconds`` only.

Concurrent misses of one key wait for a single build ("single flight"): a hundred clients asking for the
same page cost one query. A request with ``Cache-Control: no-cache`` skips the cache and refreshes it.
While the database cannot be reached (a build fails with :class:`~kalshi_analytics.errors.UnavailableError`), a
stored answer younger than ``stale_seconds`` is sent instead of the error, marked ``X-Cache: stale`` with its
``Age`` (like HTTP's ``stale-if-error``); never to a request with ``no-cache``, which gets the 503.
Large bodies are stored gzip-compressed only (decompressed for the rare client that does not accept gzip),
so a day of candles for every market fits the byte budget.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property, partial
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kalshi_analytics.errors import UnavailableError
from kalshi_analytics.notifications import EARLIEST
from kalshi_analytics.web.responses import Gzipped

#: Bodies at least this long are stored gzip-compressed (and only so).
COMPRESS_MIN_BYTES = 4096
GZIP_LEVEL = 5
#: ``since`` of a notification that did not say: it may have changed anything.
EVERYTHING = EARLIEST  # an invalidation that may concern any time
#: Bodies at least this long are compressed and hashed in a thread.
OFFLOAD_MIN_BYTES = 65536


@dataclass(frozen=True)
class Rendered:
    """One stored answer: the body (plain or gzip), its strong ETag and what it depends on."""

    body: bytes
    gzipped: bool
    etag: str
    media_type: str
    built_at: float
    volatile: bool
    horizon: datetime | None = None
    route: Any = None  # the route that built it (for metrics labels when answered before routing)
    charges: tuple[str, ...] = ()  # the rate-limit classes its request was charged
    stale_age: int | None = None  # set on a copy sent in place of an error: its age, whole seconds

    @property
    def size(self) -> int:
        return len(self.body)

    def plain(self) -> bytes:
        return gzip.decompress(self.body) if self.gzipped else self.body

    @cached_property
    def stored_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers of a 200 sending the body as stored, made once: what :func:`respond` would send then."""
        return tuple(respond(Headers({"accept-encoding": "gzip"}), self).raw_headers)


def render(
    body: bytes | Gzipped,
    media_type: str,
    *,
    volatile: bool,
    compress: bool = True,
    horizon: datetime | None = None,
    route: Any = None,
    charges: tuple[str, ...] = (),
    clock: Callable[[], float] = time.monotonic,
) -> Rendered:
    if isinstance(body, Gzipped):  # compressed and tagged already
        return Rendered(body.body, True, body.etag, media_type, clock(), volatile, horizon, route, charges)
    etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
    if compress and len(body) >= COMPRESS_MIN_BYTES:
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip container
        stored, gzipped = packer.compress(body) + packer.flush(), True
    else:
        stored, gzipped = body, False
    return Rendered(stored, gzipped, etag, media_type, clock(), volatile, horizon, route, charges)


class ResponseCache:
    """LRU of :class:`Rendered` answers bounded in bytes, marked stale per ticker by notifications."""

    def __init__(
        self,
        *,
        max_bytes: int,
        fresh_seconds: float,
        max_seconds: float,
        stale_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.stale_seconds = stale_seconds
        self.clock = clock  # seconds, monotonic: ages of entries are measured with it
        self.fresh_seconds = fresh_seconds
        self.max_seconds = max_seconds
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self._dependents: dict[str | None, set[str]] = {}  # ticker (None: every market) → keys of its answers
        self._ticker_of: dict[str, str | None] = {}
        self._sent_at: dict[str, float] = {}  # key → when it was last sent (refresh-ahead picks these)
        self._stale: set[str] = set()  # keys whose data changed: usable only within the fresh window
        self._bytes = 0
        self._inflight: dict[str, asyncio.Task[Rendered]] = {}
        # Reads in flight (builds, refreshes): ticker → {token: horizon}; a notification that may change what
        # a read returns while it runs outdates it, and its answer is then stored stale.
        self._reading: dict[str | None, dict[int, datetime | None]] = {}
        self._outdated: set[int] = set()
        self._tokens = 0
        self._listening = False
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.refreshes = 0
        self.stale_answers = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------------------------ notifications
    def invalidate(self, tickers: Iterable[str], since: datetime | None = EVERYTHING) -> None:
        """The recorder committed rows of ``tickers``; its time-series rows start at ``since`` (None: it wrote
        catalogue rows only; :data:`EVERYTHING` when unknown)."""
        self.invalidations += 1
        self._stale.update(self._dependents.get(None, ()))
        self._outdated.update(self._reading.get(None, ()))
        for t in tickers:
            for key in self._dependents.get(t, ()):
                if _affects(since, self._entries[key].horizon):
                    self._stale.add(key)
            for token, horizon in self._reading.get(t, {}).items():
                if _affects(since, horizon):
                    self._outdated.add(token)

    def listener_state(self, listening: bool) -> None:
        """While no notifications can arrive, no entry outlives ``fresh_seconds``; on reconnect, notifications
        sent in between are lost, so every older entry is suspect."""
        self._listening = listening
        self._stale.update(self._entries)
        self._outdated.update(token for reads in self._reading.values() for token in reads)

    # ---------------------------------------------------------------------------------------------- lookups
    def _usable(self, key: str, entry: Rendered) -> bool:
        age = self.clock() - entry.built_at
        if age < self.fresh_seconds:
            return True
        return not entry.volatile and self._listening and age < self.max_seconds and key not in self._stale

    async def get(
        self,
        key: str,
        ticker: str | None,
        build: Callable[[], Awaitable[tuple[bytes | Gzipped, str]]],
        *,
        volatile: bool = False,
        refresh: bool = False,
        horizon: datetime | None = None,
        route: Any = None,
        charges: tuple[str, ...] = (),
    ) -> Rendered:
        """The answer for ``key`` (depending on ``ticker``'s rows, or on all markets when None; only on its
        time series before ``horizon`` when given), built by ``build`` — which returns ``(body, media type)``
        and may raise (errors are never stored)."""
        if not refresh:
            entry = self.peek(key)
            if entry is not None:
                return entry
        task = self._inflight.get(key)
        if task is None or refresh:
            self.misses += 1
            make = partial(
                render,
                volatile=volatile,
                compress=self.enabled,
                horizon=horizon,
                route=route,
                charges=charges,
                clock=self.clock,
            )
            # Its own task: a client that goes away must not cancel the build others are waiting for.
            task = asyncio.create_task(self._build(key, ticker, horizon, build, make), name="api-cache-build")
            task.add_done_callback(_retrieve)
            self._inflight[key] = task
        else:
            self.hits += 1
        try:
            return await asyncio.shield(task)
        except UnavailableError:
            old = self._entries.get(key)
            if refresh or old is None or (age := self.clock() - old.built_at) >= self.stale_seconds:
                raise
            self.stale_answers += 1
            return replace(old, stale_age=int(age))

    def peek(self, key: str) -> Rendered | None:
        """The stored answer for ``key`` if it may be sent now (counted as a hit), else None."""
        entry = self._entries.get(key)
        if entry is None or not self._usable(key, entry):
            return None
        self._entries.move_to_end(key)
        self._sent_at[key] = self.clock()
        self.hits += 1
        return entry

    # ----------------------------------------------------------------------------------------- reads in flight
    def begin_read(self, ticker: str | None, horizon: datetime | None = None) -> int:
        """Call before reading the database for an answer; :meth:`end_read` says if it came out outdated."""
        self._tokens += 1
        self._reading.setdefault(ticker, {})[self._tokens] = horizon
        return self._tokens

    def end_read(self, ticker: str | None, token: int) -> bool:
        """True if a notification (or a listener reconnect) may have changed the answer while it was read."""
        reads = self._reading[ticker]
        del reads[token]
        if not reads:
            del self._reading[ticker]
        if token in self._outdated:
            self._outdated.discard(token)
            return True
        return not self._listening

    # ------------------------------------------------------------------------------------- refresh-ahead
    def recently_sent(self, key: str, within: float) -> bool:
        sent = self._sent_at.get(key)
        return sent is not None and key in self._entries and self.clock() - sent < within

    def replace(self, key: str, ticker: str, body: bytes, *, outdated: bool) -> None:
        """Store ``body`` (read between :meth:`begin_read` and :meth:`end_read`) as the new answer of an existing
        entry, its route, limits and media type kept: refreshing an answer clients keep asking for beats making
        one of them wait for the database."""
        old = self._entries.get(key)
        if old is None or not self.enabled:
            return
        entry = render(
            body,
            old.media_type,
            volatile=False,
            compress=True,
            horizon=old.horizon,
            route=old.route,
            charges=old.charges,
            clock=self.clock,
        )
        self._store(key, ticker, entry, stale=outdated)
        self.refreshes += 1

    async def _build(
        self,
        key: str,
        ticker: str | None,
        horizon: datetime | None,
        build: Callable[[], Awaitable[tuple[bytes | Gzipped, str]]],
        make: Callable[[bytes | Gzipped, str], Rendered],
    ) -> Rendered:
        # Open until the answer is stored: a notification meanwhile (the query included) outdates it.
        token = self.begin_read(ticker, horizon)
        try:
            body, media_type = await build()
            # Compressing and hashing a big body would stall the loop.
            if not isinstance(body, Gzipped) and len(body) >= OFFLOAD_MIN_BYTES:
                entry = await asyncio.to_thread(make, body, media_type)
            else:
                entry = make(body, media_type)
        finally:
            outdated = self.end_read(ticker, token)
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
        if self.enabled and entry.size <= self.max_bytes // 8:
            self._store(key, ticker, entry, stale=outdated)
        return entry

    def _store(self, key: str, ticker: str | None, entry: Rendered, *, stale: bool) -> None:
        sent = self._sent_at.get(key, self.clock())  # a refreshed answer was not sent by being refreshed
        self._drop(key)
        self._entries[key] = entry
        self._ticker_of[key] = ticker
        self._dependents.setdefault(ticker, set()).add(key)
        self._bytes += entry.size
        self._sent_at[key] = sent
        if stale:
            self._stale.add(key)
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.size
        self._stale.discard(key)
        self._sent_at.pop(key, None)
        ticker = self._ticker_of.pop(key)
        keys = self._dependents[ticker]
        keys.discard(key)
        if not keys:
            del self._dependents[ticker]


def _affects(since: datetime | None, horizon: datetime | None) -> bool:
    """Whether a commit whose time series start at ``since`` can change an answer ending at ``horizon``."""
    if horizon is None:
        return True
    return since is not None and since < horizon


def _retrieve(task: asyncio.Task[Rendered]) -> None:
    """Mark a failed build's exception as seen even when every waiter went away (no asyncio warning)."""
    if not task.cancelled():
        task.exception()


# ------------------------------------------------------------------------------------------------ HTTP side
async def cached(
    request: Request,
    ticker: str | None,
    build: Callable[[], Awaitable[tuple[bytes | Gzipped, str]]],
    *,
    volatile: bool = False,
    horizon: datetime | None = None,
) -> Response:
    """Answer ``request`` from the app's cache (key: path and raw query), building it with ``build`` when
    needed; ``ticker`` is what the answer depends on (None: every market), ``horizon`` the end of its window.

    A request with a relative time (read by :func:`kalshi_analytics.web.params.query_time`) is ``volatile``
    whatever the caller says: the same query string means another window a moment later."""
    cache: ResponseCache = request.app.state.response_cache
    volatile = volatile or getattr(request.state, "clock_relative", False)
    entry = await cache.get(
        cache_key(request.scope),
        ticker,
        build,
        volatile=volatile,
        refresh=wants_fresh(request.headers),
        horizon=horizon,
        route=request.scope.get("route"),
        charges=tuple(getattr(request.state, "charges", ())),
    )
    return respond(request.headers, entry)


def cache_key(scope: Scope) -> str:
    return str(scope["path"]) + "?" + bytes(scope["query_string"]).decode("latin-1")


def wants_fresh(headers: Headers) -> bool:
    return "no-cache" in headers.get("cache-control", "").lower()


#: Charges a request's rate-limit classes (all or none) and says whether it may go on: the app's limits.
Allow = Callable[[tuple[str, ...], Scope], bool]


class AnswerFromCache:
    """Pure ASGI, inside CORS: a GET whose answer is cached and usable is sent from here, before routing,
    parameter validation and dependencies (~half of a request's CPU) run again. The same path and query got
    a 200 from the full stack when the answer was stored, so skipping validation changes nothing; the request
    is still charged to the rate limits its first one was, and a refused one goes on to the app, which
    answers 429 the usual way."""

    def __init__(self, app: ASGIApp, cache: ResponseCache, allow: Allow) -> None:
        self.app = app
        self.cache = cache
        self.allow = allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and self.cache.enabled:
            headers = Headers(scope=scope)
            if not wants_fresh(headers):
                entry = self.cache.peek(cache_key(scope))
                if entry is not None and self.allow(entry.charges, scope):
                    scope["route"] = entry.route
                    if as_stored(headers, entry):  # the usual case, without building a Response
                        # A list of its own each time: middleware around this one may add to the headers it is sent.
                        start = {"type": "http.response.start", "status": 200, "headers": [*entry.stored_headers]}
                        await send(start)
                        await send({"type": "http.response.body", "body": entry.body})
                    else:
                        await respond(headers, entry)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def respond(headers: Headers, entry: Rendered) -> Response:
    """200 with the body (gzip when stored so and accepted), or 304 when the client holds this ETag."""
    out = {"ETag": entry.etag, "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
    if entry.stale_age is not None:
        out["X-Cache"] = "stale"
        out["Age"] = str(entry.stale_age)
    if _matches(headers.get("if-none-match"), entry.etag):
        return Response(status_code=304, headers=out)
    body = entry.body
    if entry.gzipped:
        if accepts_gzip(headers.get("accept-encoding")):
            out["Content-Encoding"] = "gzip"
        else:
            body = entry.plain()
    return Response(body, media_type=entry.media_type, headers=out)


def as_stored(headers: Headers, entry: Rendered) -> bool:
    """Whether :func:`respond` would send ``entry`` as stored (200, fresh, in an encoding the client takes)."""
    return (
        entry.stale_age is None
        and "if-none-match" not in headers
        and (not entry.gzipped or accepts_gzip(headers.get("accept-encoding")))
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110 §12.5.3: ``gzip`` or ``*`` listed without ``q=0``."""
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                if float(q[2:]) == 0:
                    continue
            except ValueError:
                continue
        return True
    return False
