"""Closed hours of 1-minute candles, stored rendered and compressed, so a day of candles is read, not rendered.

PostgreSQL needs ~17 µs a candle to render the history route's JSON (25 ms for a day of 1,440), and the answer is
620 kB. So the recorder's sink keeps, in the transaction that writes the candles, one row of
``market_candle_blocks`` per market and closed hour: that hour's candles exactly as the route renders them
(``{…}, {…}``), as a raw deflate stream that ends on a byte boundary (a sync flush) and refers to nothing
before it, with the CRC-32, length and digest of the text. Such streams concatenate: the route answers a day
as ONE gzip member assembled from the stored blocks (:func:`assemble`): the partial hours at the window's edges
are cut from their blocks (:func:`cut`), and only hours without a block (not closed yet) are rendered live —
decompressed, byte for byte what rendering it all would give.

An hour is closed once the sink has written a candle of that market in a later hour. A write into a closed
hour (a late poll, a gap repair) deletes its block in the same transaction and queues it to be rendered
again, so a stored block always equals what its candles would render; the route renders live any hour
without a block. Rendering is bounded per batch (``budget``): the hour after which every market's block
closes does not stall the sink.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from isal import isal_zlib

#: The span of a block; aligned on UTC hours.
BLOCK = timedelta(hours=1)
_BLOCK_SQL = "interval '1 hour'"
_ORIGIN_SQL = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
#: json_agg's separator between two elements (the route's arrays are PostgreSQL's json_agg text).
SEPARATOR = b", "
DIGEST_BYTES = 12
#: Stored blocks are compressed once, so as well as zlib can; live text as fast as it can.
STORED_LEVEL = 9
LIVE_LEVEL = 1


def block_of(minute: datetime) -> datetime:
    """The start of the block holding ``minute``."""
    return _ORIGIN + (minute - _ORIGIN) // BLOCK * BLOCK


def block_sql(col: str) -> str:
    return f"date_bin({_BLOCK_SQL}, {col}, {_ORIGIN_SQL})"


def digest(text: bytes) -> bytes:
    return hashlib.blake2b(text, digest_size=DIGEST_BYTES).digest()


class Block(NamedTuple):
    """One stored block: the candles of one market and hour, rendered and compressed."""

    ticker: str
    start: datetime
    candles: int
    length: int  # bytes of the rendered text
    crc: int  # its CRC-32
    digest: bytes  # its blake2b (the answer's ETag is made of these)
    deflate: bytes  # raw deflate, sync-flushed: concatenable, no back-reference before its start


def pack(ticker: str, start: datetime, candles: int, text: bytes) -> Block:
    packer = zlib.compressobj(STORED_LEVEL, zlib.DEFLATED, -15)
    deflate = packer.compress(text) + packer.flush(zlib.Z_SYNC_FLUSH)
    return Block(ticker, start, candles, len(text), zlib.crc32(text), digest(text), deflate)


BLOCK_COLUMNS = Block._fields


# --------------------------------------------------------------------------------------------- SQL (rendering)
def render_sql(candle_object: str) -> str:
    """The statement rendering the blocks of ``($1 tickers, $2 starts)``: ticker, start, candles, text.

    ``candle_object`` is the route's JSON expression of one candle (columns named as in its 1m query)."""
    return (
        f"SELECT k.t AS ticker, k.b AS block, count(*)::int AS candles, "
        f"string_agg(({candle_object})::text, ', ' ORDER BY c.start) AS body "
        "FROM unnest($1::text[], $2::timestamptz[]) AS k(t, b) "
        "JOIN LATERAL (SELECT minute AS start, * FROM market_candles_1m m WHERE m.ticker = k.t "
        f"AND m.minute >= k.b AND m.minute < k.b + {_BLOCK_SQL}) c ON true "
        "GROUP BY k.t, k.b"
    )


UPSERT_SQL = (
    f"INSERT INTO market_candle_blocks ({', '.join(BLOCK_COLUMNS)}) "
    "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int4[], $4::int4[], $5::int8[], $6::bytea[], "
    "$7::bytea[]) ON CONFLICT (ticker, start) DO UPDATE SET candles = EXCLUDED.candles, length = EXCLUDED.length, "
    "crc = EXCLUDED.crc, digest = EXCLUDED.digest, deflate = EXCLUDED.deflate"
)
DELETE_SQL = (
    "DELETE FROM market_candle_blocks b USING unnest($1::text[], $2::timestamptz[]) AS k(ticker, start) "
    "WHERE b.ticker = k.ticker AND b.start = k.start"
)


Key = tuple[str, datetime]
Work = Literal["render", "probe"]


def missing_sql(others: Sequence[tuple[str, str]] = ()) -> str:
    """Closed hours without a block in the day before the market's newest candle (once per market after a
    start) — or without a row in any of ``others`` (table, hour column) kept for the same hours."""
    lacking = [("market_candle_blocks", "start"), *others]
    absent = " OR ".join(
        f"NOT EXISTS (SELECT 1 FROM {table} b WHERE b.ticker = c.ticker AND b.{col} = {block_sql('c.minute')})"
        for table, col in lacking
    )
    return (
        f"WITH last AS (SELECT {block_sql('max(minute)')} AS h FROM market_candles_1m WHERE ticker = $1) "
        f"SELECT DISTINCT {block_sql('c.minute')} AS start FROM market_candles_1m c, last "
        "WHERE c.ticker = $1 AND c.minute >= last.h - interval '25 hours' AND c.minute < last.h "
        f"AND ({absent})"
    )


class HourStore(Protocol):
    """Something else the sink keeps per closed hour beside the candle block (e.g. the hour's snapshots
    rendered): deleted when the hour is written, rendered when it closes, in the same transaction."""

    #: (table, hour column): an hour without a row there is rendered again by the start-up probe.
    table: tuple[str, str]

    async def delete(self, pg: Any, keys: Sequence[Key]) -> None: ...

    async def render(self, pg: Any, keys: Sequence[Key]) -> None:
        """Render (or queue for a later batch) the closed hours ``keys``."""

    def committed(self) -> None:
        """The batch whose :meth:`render` ran last has committed."""


# ------------------------------------------------------------------------------------------- the sink's side


@dataclass
class Plan:
    """What one batch does to the blocks (applied in its transaction, kept only once it commits)."""

    written: list[Key] = field(default_factory=list)  # their blocks, if any, are deleted now
    render: list[Key] = field(default_factory=list)
    probe: list[str] = field(default_factory=list)  # markets to look for closed hours without a block
    latest: dict[str, datetime] = field(default_factory=dict)
    queued: list[tuple[Key, Work]] = field(default_factory=list)  # left for later batches


class BlockKeeper:
    """The sink's bookkeeping of closed hours: which block each market writes into now, and the blocks (and
    start-up probes) waiting for a batch with room. In memory: a sink that starts again probes each market's
    last day once for closed hours without a block."""

    def __init__(self, candle_object: str, *, budget: int = 50, also: Sequence[HourStore] = ()) -> None:
        self.budget = budget
        self.also = tuple(also)
        self._render_sql = render_sql(candle_object)
        self._missing_sql = missing_sql([a.table for a in self.also])
        self._latest: dict[str, datetime] = {}
        self._queue: OrderedDict[Key, Work] = OrderedDict()
        self.rendered = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def plan(self, written: Iterable[Key]) -> Plan:
        """The work of a batch whose candles are ``written`` (ticker, minute)."""
        p = Plan()
        blocks: dict[str, set[datetime]] = {}
        for ticker, minute in written:
            blocks.setdefault(ticker, set()).add(block_of(minute))
        queue = OrderedDict(self._queue)
        for ticker, starts in blocks.items():
            top = max(starts)
            latest = self._latest.get(ticker)
            now = top if latest is None or top > latest else latest
            for start in starts:
                # Whatever the sink knows, a block of an hour written now is deleted now (another sink may
                # have rendered it); one of a closed hour is rendered again.
                p.written.append((ticker, start))
                if start < now:
                    queue[(ticker, start)] = "render"
            if latest is None:
                queue[(ticker, top)] = "probe"
            elif top > latest:
                queue[(ticker, latest)] = "render"  # the hour it wrote into until now has closed
            if now != latest:
                p.latest[ticker] = now
        for _ in range(min(self.budget, len(queue))):
            key, kind = queue.popitem(last=False)
            if kind == "render":
                p.render.append(key)
            else:
                p.probe.append(key[0])
        p.queued = list(queue.items())
        return p

    async def apply(self, pg: Any, p: Plan) -> None:
        """Inside the batch's transaction, after its candles were written."""
        if p.written:
            await pg.execute(DELETE_SQL, *_columns(p.written))
            for store in self.also:
                await store.delete(pg, p.written)
        render = list(p.render)
        found: list[tuple[Key, Work]] = []
        for ticker in p.probe:
            found.extend(((ticker, r["start"]), "render") for r in await pg.fetch(self._missing_sql, ticker))
        found = [f for f in found if f[0] not in render]
        room = max(0, self.budget - len(render) - len(p.probe))
        render.extend(key for key, _ in found[:room])
        p.queued = found[room:] + p.queued
        if render:
            rows = await pg.fetch(self._render_sql, *_columns(render))
            blocks = [pack(r["ticker"], r["block"], r["candles"], r["body"].encode()) for r in rows]
            if blocks:
                await pg.execute(UPSERT_SQL, *map(list, zip(*blocks, strict=True)))
            p.render = render
        for store in self.also:
            await store.render(pg, render)  # called every batch: a store may have hours queued

    def committed(self, p: Plan) -> None:
        for store in self.also:
            store.committed()
        self._latest.update(p.latest)
        self._queue = OrderedDict(p.queued)
        self.rendered += len(p.render)


def _columns(keys: Sequence[Key]) -> tuple[list[str], list[datetime]]:
    return [k[0] for k in keys], [k[1] for k in keys]


# ------------------------------------------------------------------------------------------- the route's side
def read_sql(candle_object: str, *, head: bool = True, tail: bool = True) -> str:
    """A window ``[$2, $3)`` of market ``$1`` in pieces: the stored blocks of the hours it touches (from ``$6``,
    the hour holding ``$2``), and the partial hours at its edges rendered live, per hour, when they have no
    block (``[$4, $5)`` are its whole hours). Rows: start, candles, and either (length, crc, digest, deflate) or
    body; in no particular order (in time order from the statement without edges). A block only partly inside
    the window is cut with :func:`cut`; whole hours without a block are left to :func:`hours_sql` (a closed hour
    waiting for its block, the hour being written, an hour without data).

    ``head`` / ``tail``: whether the window has a partial hour at its start / end (``$2 < $4``, and
    ``max($5, $4) < $3``: the edge queries' ranges are not empty). Without either, the statement reads the blocks
    alone: for a day of whole hours the two empty edge queries were ~50 of PostgreSQL's ~165 µs (measured)."""
    live = (
        f"SELECT {block_sql('c.start')}, count(*)::int, NULL, NULL, NULL, NULL, "
        f"string_agg(({candle_object})::text, ', ' ORDER BY c.start) "
        "FROM (SELECT minute AS start, * FROM market_candles_1m WHERE ticker = $1 AND minute >= LO "
        "AND minute < HI) c WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.start = EDGE) GROUP BY 1"
    )
    blocks = (
        "SELECT start, candles, length, crc, digest, deflate FROM market_candle_blocks "
        "WHERE ticker = $1 AND start >= $6 AND start < $3"
    )
    if not (head or tail):  # in time order (what the index gives for free)
        return blocks.replace(" FROM", ", NULL AS body FROM", 1) + " ORDER BY start"
    parts = [f"WITH b AS ({blocks}) SELECT start, candles, length, crc, digest, deflate, NULL AS body FROM b"]
    if head:
        parts.append(live.replace("LO", "$2").replace("HI", "least(CAST($4 AS timestamptz), $3)").replace("EDGE", "$6"))
    if tail:
        lo = "greatest(CAST($5 AS timestamptz), CAST($4 AS timestamptz))"
        parts.append(live.replace("LO", lo).replace("HI", "$3").replace("EDGE", "$5"))
    return " UNION ALL ".join(parts)


_OBJECT = b'{"start" : "'


def cut(row: Any, start: datetime, end: datetime) -> dict[str, Any] | None:
    """The candles of a stored block (a :func:`read_sql` row) whose minute lies in ``[start, end)``, as live
    text — what rendering them would give — or None when there are none. A block's text is its candles'
    objects in minute order, each starting ``{"start" : "<minute>"``, joined by ``", "``."""
    text = zlib.decompressobj(-15).decompress(row["deflate"])
    lo, hi = _minute_text(start, ceil=True), _minute_text(end, ceil=True)
    kept: list[int] = []  # offsets of the objects kept, and the one after them
    at = text.find(_OBJECT)
    while at >= 0:
        minute = text[at + len(_OBJECT) : at + len(_OBJECT) + 20]
        if minute >= hi:
            break
        if minute >= lo:
            kept.append(at)
        at = text.find(_OBJECT, at + 1)
    if not kept:
        return None
    stop = len(text) if at < 0 else at - len(SEPARATOR)
    body = text[kept[0] : stop].decode()
    return {"start": row["start"], "candles": len(kept), "deflate": None, "body": body}


def _minute_text(ts: datetime, *, ceil: bool) -> bytes:
    """The first minute at or after ``ts`` as the candles' text writes a minute ("2026-11-20T12:00:00Z")."""
    minute = ts.astimezone(UTC).replace(second=0, microsecond=0)
    if ceil and minute < ts:
        minute += timedelta(minutes=1)
    return minute.strftime("%Y-%m-%dT%H:%M:00Z").encode()


def hours_sql(candle_object: str) -> str:
    """The hours ``$2`` (an array) of market ``$1`` rendered live, rows as :func:`read_sql`'s."""
    return (
        f"SELECT {block_sql('c.start')} AS start, count(*)::int AS candles, NULL AS length, NULL AS crc, "
        "NULL AS digest, NULL AS deflate, "
        f"string_agg(({candle_object})::text, ', ' ORDER BY c.start) AS body "
        "FROM (SELECT minute AS start, * FROM market_candles_1m WHERE ticker = $1 AND minute >= $3 AND minute < $4 "
        f"AND {block_sql('minute')} = ANY($2::timestamptz[])) c GROUP BY 1"
    )


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``[first, last)``: the blocks that fit in ``[start, end)`` (first > last when none does)."""
    first = block_of(start)
    if first < start:
        first += BLOCK
    return first, block_of(end)


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, unknown OS
_FINAL_BLOCK = b"\x03\x00"  # an empty final block (fixed Huffman): ends the deflate stream


#: Live text shorter than this goes out as stored (uncompressed) deflate blocks: no compressor to set up.
STORE_BELOW = 1024


def _stored(data: bytes) -> bytes:
    """``data`` as stored deflate blocks (not final): on a byte boundary, 5 bytes of header per 64 kB."""
    out = []
    for i in range(0, len(data), 0xFFFF):
        chunk = data[i : i + 0xFFFF]
        out.append(struct.pack("<BHH", 0, len(chunk), len(chunk) ^ 0xFFFF) + chunk)
    return b"".join(out)


def _deflate(data: bytes) -> bytes:
    """``data`` as deflate blocks on their own (not final, ending on a byte boundary)."""
    if len(data) < STORE_BELOW:
        return _stored(data)
    # A fresh compressor, sync-flushed: nothing before or after it is referred to.
    packer = isal_zlib.compressobj(LIVE_LEVEL, isal_zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(isal_zlib.Z_SYNC_FLUSH)


_SEPARATOR_STORED = _stored(SEPARATOR)


def assemble(head: bytes, rows: Sequence[Any], tail: bytes) -> tuple[bytes, str]:
    """``head`` + the rows of :func:`read_sql` joined as one JSON array's elements + ``tail``, gzipped, and its
    ETag (a digest of the texts' digests — head, each hour, tail — so the same answer has the same tag whether
    an hour came from a stored block or was rendered live).

    Written for speed (a day is 24 blocks): live text is gathered and compressed in one piece, a separator
    between two blocks is a constant stored block, and the CRC runs on through live text; only the stored
    blocks' CRCs are combined."""
    out = [_GZIP_HEADER]
    crc = length = 0
    tags = [digest(head)]  # hashed at the end in one piece: the same as hashing them one after the other
    live = [head]
    combine = isal_zlib.crc32_combine
    for i, r in enumerate(rows):
        deflate = r["deflate"]
        if deflate is None:
            body = r["body"]
            if isinstance(body, str):
                body = body.encode()
            if i:
                live.append(SEPARATOR)
            live.append(body)
            tags.append(digest(body))
            continue
        if live:
            if i:
                live.append(SEPARATOR)
            data = b"".join(live)
            out.append(_deflate(data))
            crc, length = zlib.crc32(data, crc), length + len(data)
            live = []
        else:  # right after another block
            out.append(_SEPARATOR_STORED)
            crc, length = zlib.crc32(SEPARATOR, crc), length + len(SEPARATOR)
        out.append(deflate)
        n = r["length"]
        crc, length = combine(crc, r["crc"], n), length + n
        tags.append(r["digest"])
    live.append(tail)
    tags.append(digest(tail))
    data = b"".join(live)
    crc, length = zlib.crc32(data, crc), length + len(data)
    out += [_deflate(data), _FINAL_BLOCK, struct.pack("<II", crc, length & 0xFFFFFFFF)]
    return b"".join(out), '"' + hashlib.blake2b(b"".join(tags), digest_size=DIGEST_BYTES).hexdigest() + '"'
