"""A per-process cache of rendered read responses, kept true by the recorder's commit notifications.

Every read the API serves is a pure function of what the recorder has committed (and, for windows that
default to "now", of the clock). The recorder's sink sends ``NOTIFY market_updates {"tickers": [...]}`` in
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
* answers whose window is relative to the clock (``end`` omitted) are reused for ``fresh_seconds`` only.

Concurrent misses of one key wait for a single build ("single flight"): a hundred clients asking for the
same page cost one query. A request with ``Cache-Control: no-cache`` skips the cache and refreshes it.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

#: Bodies at least this long are stored gzip-compressed (and only so).
COMPRESS_MIN_BYTES = 4096
GZIP_LEVEL = 5
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
    stamp: tuple[int, int]
    volatile: bool
    size: int = field(default=0)

    def plain(self) -> bytes:
        return gzip.decompress(self.body) if self.gzipped else self.body


def render(body: bytes, media_type: str, *, stamp: tuple[int, int], volatile: bool, compress: bool = True) -> Rendered:
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    if compress and len(body) >= COMPRESS_MIN_BYTES:
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip container
        stored, gzipped = packer.compress(body) + packer.flush(), True
    else:
        stored, gzipped = body, False
    return Rendered(stored, gzipped, etag, media_type, time.monotonic(), stamp, volatile, len(stored))


class ResponseCache:
    """LRU of :class:`Rendered` answers bounded in bytes, invalidated per ticker by notifications."""

    def __init__(self, *, max_bytes: int, fresh_seconds: float, max_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.fresh_seconds = fresh_seconds
        self.max_seconds = max_seconds
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, asyncio.Future[Rendered]] = {}
        self._versions: dict[str, int] = {}
        self._any = 0  # bumped by every notification: the version of "all markets"
        self._epoch = 0  # bumped whenever the listener connects or drops: nothing older can be trusted
        self._listening = False
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------------------------ notifications
    def invalidate(self, tickers: list[str]) -> None:
        """The recorder committed rows of ``tickers``."""
        self.invalidations += 1
        self._any += 1
        for t in tickers:
            self._versions[t] = self._versions.get(t, 0) + 1

    def listener_state(self, listening: bool) -> None:
        """While no notifications can arrive, no entry outlives ``fresh_seconds``; on reconnect, notifications
        sent in between are lost, so every older entry is suspect."""
        self._listening = listening
        self._epoch += 1

    def _stamp(self, ticker: str | None) -> tuple[int, int]:
        return (self._epoch, self._any if ticker is None else self._versions.get(ticker, 0))

    # ---------------------------------------------------------------------------------------------- lookups
    def _usable(self, entry: Rendered, ticker: str | None) -> bool:
        age = time.monotonic() - entry.built_at
        if age < self.fresh_seconds:
            return True
        if entry.volatile or not self._listening or age >= self.max_seconds:
            return False
        return entry.stamp == self._stamp(ticker)

    async def get(
        self,
        key: str,
        ticker: str | None,
        build: Callable[[], Awaitable[tuple[bytes, str]]],
        *,
        volatile: bool = False,
        refresh: bool = False,
    ) -> Rendered:
        """The answer for ``key`` (depending on ``ticker``'s rows, or on all markets when None), built by
        ``build`` — which returns ``(body, media type)`` and may raise (errors are never stored)."""
        task = self._inflight.get(key)
        if not refresh:
            entry = self._entries.get(key)
            if entry is not None and self._usable(entry, ticker):
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
        if task is None or refresh:
            self.misses += 1
            # Its own task: a client that goes away must not cancel the build others are waiting for.
            task = asyncio.create_task(self._build(key, ticker, build, volatile), name="api-cache-build")
            task.add_done_callback(_retrieve)
            self._inflight[key] = task
        else:
            self.hits += 1
        return await asyncio.shield(task)

    async def _build(
        self, key: str, ticker: str | None, build: Callable[[], Awaitable[tuple[bytes, str]]], volatile: bool
    ) -> Rendered:
        stamp = self._stamp(ticker)  # taken before the query: a notification during the build outdates it
        try:
            body, media_type = await build()
            if len(body) >= OFFLOAD_MIN_BYTES:  # compressing and hashing a big body would stall the loop
                entry = await asyncio.to_thread(
                    render, body, media_type, stamp=stamp, volatile=volatile, compress=self.enabled
                )
            else:
                entry = render(body, media_type, stamp=stamp, volatile=volatile, compress=self.enabled)
        finally:
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]
        if self.enabled and entry.size <= self.max_bytes // 8:
            self._store(key, entry)
        return entry

    def _store(self, key: str, entry: Rendered) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size


def _retrieve(task: asyncio.Task[Rendered]) -> None:
    """Mark a failed build's exception as seen even when every waiter went away (no asyncio warning)."""
    if not task.cancelled():
        task.exception()


# ------------------------------------------------------------------------------------------------ HTTP side
async def cached(
    request: Request,
    ticker: str | None,
    build: Callable[[], Awaitable[tuple[bytes, str]]],
    *,
    volatile: bool = False,
) -> Response:
    """Answer ``request`` from the app's cache (key: path and raw query), building it with ``build`` when
    needed; ``ticker`` is what the answer depends on (None: every market)."""
    cache: ResponseCache = request.app.state.response_cache
    key = request.scope["path"] + "?" + request.scope["query_string"].decode("latin-1")
    refresh = "no-cache" in request.headers.get("cache-control", "").lower()
    entry = await cache.get(key, ticker, build, volatile=volatile, refresh=refresh)
    return respond(request, entry)


def respond(request: Request, entry: Rendered) -> Response:
    """200 with the body (gzip when stored so and accepted), or 304 when the client holds this ETag."""
    headers = {"ETag": entry.etag, "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
    if _matches(request.headers.get("if-none-match"), entry.etag):
        return Response(status_code=304, headers=headers)
    body = entry.body
    if entry.gzipped:
        if accepts_gzip(request.headers.get("accept-encoding")):
            headers["Content-Encoding"] = "gzip"
        else:
            body = entry.plain()
    return Response(body, media_type=entry.media_type, headers=headers)


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
