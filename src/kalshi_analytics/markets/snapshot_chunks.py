"""Closed hours of raw snapshots, stored rendered in chunks of 50 rows, so a raw history page is read, not rendered.

PostgreSQL needs ~7 µs a snapshot to render the raw history route's JSON (17 fields, two timestamps in pydantic's
form, the implied probability): 0.7 ms of the server for a page of 100, most of what such a request costs. So
the recorder's sink, when it renders an hour's candle block (:mod:`candle_blocks`, same hours, same
transaction, same budget), also stores that hour's snapshots as the route renders them, in chunks of
:data:`CHUNK_ROWS` rows: each chunk a raw deflate stream that ends on a byte boundary and refers to nothing
before it (concatenable, as candle blocks are), with its rows' keyset keys (``ts`` in µs, ``source``) beside
it. A page is then the chunks it spans: whole ones copied into the answer's gzip member as stored, the two at
its edges inflated and cut at row boundaries.

A stored chunk is exact: a write into an hour deletes that hour's chunks in the same transaction (the sink
is the only writer of ``market_snapshots``), and an hour is rendered whole. A page is answered from chunks only
when they cover it provably — its first hour has chunks, the hours it spans follow one another, the chunks of
each hour have consecutive numbers, and they were rendered with the API's ``max_spread`` — and otherwise, as
before, rendered live; rows after the last stored hour (the hour being written) are rendered live and appended.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from typing import Any, NamedTuple

from isal import isal_zlib

from kalshi_analytics.markets.candle_blocks import BLOCK, SEPARATOR, digest

#: Rows per chunk: the API's page sizes (100 by default, 1,000 at most) are whole chunks.
CHUNK_ROWS = 50
#: ``market_snapshots.source`` values in PostgreSQL's order (the keyset's second key): a row's code is its index.
SOURCES = ("backfill", "poll", "websocket")
_CODE = {s: i for i, s in enumerate(SOURCES)}
#: Each row's JSON object starts so (the ticker is its first field); a JSON string never holds an unescaped ``"``.
ROW_START = b'{"ticker" : "'
_BETWEEN = SEPARATOR + ROW_START
#: Chunks are compressed once, while the sink waits: isal's strongest level is fast and within ~10 % of zlib's.
LEVEL = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def micros(ts: datetime) -> int:
    return (ts - _EPOCH) // _US


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class Chunk(NamedTuple):
    """Up to :data:`CHUNK_ROWS` consecutive snapshots of one market and hour, rendered and compressed."""

    ticker: str
    hour: datetime
    seq: int  # its place in the hour, from 0
    rows: int
    last_ts: datetime  # its last row's ts (a page starting later skips the chunk)
    max_spread: Decimal  # the implied probability's parameter the rows were rendered with
    keys: bytes  # the rows' ts, µs since the epoch, little-endian int64 each
    sources: bytes  # the rows' sources, one byte each (index into SOURCES)
    length: int  # bytes of the rendered text
    crc: int  # its CRC-32
    digest: bytes  # its blake2b
    deflate: bytes  # raw deflate, sync-flushed: concatenable, no back-reference before its start


CHUNK_COLUMNS = Chunk._fields


def pack(ticker: str, hour: datetime, seq: int, max_spread: Decimal, rows: Sequence[Mapping[str, Any]]) -> Chunk:
    """One chunk of rows as :func:`render_sql` returns them (``us``, ``source``, ``doc``), in keyset order."""
    text = SEPARATOR.join(r["doc"].encode() for r in rows)
    packer = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, -15)
    deflate = packer.compress(text) + packer.flush(isal_zlib.Z_SYNC_FLUSH)
    return Chunk(
        ticker,
        hour,
        seq,
        len(rows),
        from_micros(rows[-1]["us"]),
        max_spread,
        struct.pack(f"<{len(rows)}q", *(r["us"] for r in rows)),
        bytes(_CODE[r["source"]] for r in rows),
        len(text),
        isal_zlib.crc32(text),
        digest(text),
        deflate,
    )


def chunks_of(rendered: Iterable[Mapping[str, Any]], max_spread: Decimal) -> list[Chunk]:
    """The chunks of :func:`render_sql`'s rows (ordered by ticker, hour, then keyset)."""
    out: list[Chunk] = []
    for (ticker, hour), group in groupby(rendered, key=lambda r: (r["ticker"], r["hour"])):
        rows = list(group)
        for seq, i in enumerate(range(0, len(rows), CHUNK_ROWS)):
            out.append(pack(ticker, hour, seq, max_spread, rows[i : i + CHUNK_ROWS]))
    return out


# --------------------------------------------------------------------------------------------- the sink's side
def render_sql(snapshot_object: str) -> str:
    """The rows of the hours ``($1 tickers, $2 hours)`` rendered, with ``$3`` as ``max_spread``; in chunk order.

    ``snapshot_object`` is the route's JSON expression of one snapshot (its ``:max_spread`` parameter)."""
    obj = snapshot_object.replace(":max_spread", "$3")
    return (
        "SELECT k.t AS ticker, k.b AS hour, (extract(epoch FROM s.ts) * 1000000)::int8 AS us, s.source, "
        f"({obj})::text AS doc FROM unnest($1::text[], $2::timestamptz[]) AS k(t, b) "
        "JOIN LATERAL (SELECT * FROM market_snapshots WHERE ticker = k.t AND ts >= k.b "
        f"AND ts < k.b + interval '{BLOCK.total_seconds():.0f} seconds') s ON true "
        "ORDER BY k.t, k.b, s.ts, s.source"
    )


DELETE_SQL = (
    "DELETE FROM market_snapshot_chunks c USING unnest($1::text[], $2::timestamptz[]) AS k(ticker, hour) "
    "WHERE c.ticker = k.ticker AND c.hour = k.hour"
)
INSERT_SQL = (
    f"INSERT INTO market_snapshot_chunks ({', '.join(CHUNK_COLUMNS)}) "
    "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int2[], $4::int4[], $5::timestamptz[], "
    "$6::numeric[], $7::bytea[], $8::bytea[], $9::int4[], $10::int8[], $11::bytea[], $12::bytea[])"
)


class SnapshotChunks:
    """The sink's side (a :class:`~kalshi_analytics.markets.candle_blocks.HourStore`): the chunks of an hour
    are deleted when the hour is written and rendered, whole, after it closes — at most ``budget`` hours a
    batch (an hour of a market polled each 5 s is 720 rows, ~10 ms of PostgreSQL), the rest queued for later
    batches; the queue changes only when a batch commits."""

    table = ("market_snapshot_chunks", "hour")

    def __init__(self, snapshot_object: str, max_spread: Decimal, *, budget: int = 5) -> None:
        self._render_sql = render_sql(snapshot_object)
        self.max_spread = max_spread
        self.budget = budget
        self._queue: dict[tuple[str, datetime], None] = {}
        self._next: dict[tuple[str, datetime], None] | None = None
        self.rendered = 0
        self._rendering = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def delete(self, pg: Any, keys: Sequence[tuple[str, datetime]]) -> None:
        await pg.execute(DELETE_SQL, [k[0] for k in keys], [k[1] for k in keys])

    async def render(self, pg: Any, keys: Sequence[tuple[str, datetime]]) -> None:
        pending = dict(self._queue)
        pending.update(dict.fromkeys(keys))
        take = list(pending)[: self.budget]
        for k in take:
            del pending[k]
        self._next, self._rendering = pending, 0
        if not take:
            return
        await self.delete(pg, take)
        tickers, hours = [k[0] for k in take], [k[1] for k in take]
        chunks = chunks_of(await pg.fetch(self._render_sql, tickers, hours, self.max_spread), self.max_spread)
        if chunks:
            await pg.execute(INSERT_SQL, *map(list, zip(*chunks, strict=True)))
        self._rendering = len(take)

    def committed(self) -> None:
        if self._next is not None:
            self._queue, self._next = self._next, None
            self.rendered += self._rendering


_HOUR = f"interval '{BLOCK.total_seconds():.0f} seconds'"
#: The chunks a page may use (from its first row on, ``:n`` at most), each with ``gap``: whether rows not
#: stored in chunks lie between it and the chunk before (or the page's first row) — an hour not rendered yet.
READ_SQL = (
    "SELECT x.*, CASE WHEN x.prev IS NULL THEN x.hour > :from AND EXISTS (SELECT 1 FROM market_snapshots s "
    "WHERE s.ticker = :ticker AND s.ts >= :from AND s.ts < x.hour) "
    f"WHEN x.hour > x.prev + {_HOUR} THEN EXISTS (SELECT 1 FROM market_snapshots s WHERE s.ticker = :ticker "
    f"AND s.ts >= x.prev + {_HOUR} AND s.ts < x.hour) ELSE false END AS gap "
    "FROM (SELECT c.*, lag(c.hour) OVER (ORDER BY c.hour, c.seq) AS prev FROM ("
    "SELECT hour, seq, rows, max_spread, keys, sources, length, crc, digest, deflate FROM market_snapshot_chunks "
    "WHERE ticker = :ticker AND hour >= :from_hour AND hour < :end AND last_ts >= :from "
    "ORDER BY hour, seq LIMIT :n) c) x ORDER BY x.hour, x.seq"
)


@dataclass(frozen=True)
class ChunkPage:
    """A page from stored chunks: ``pieces`` as :func:`candle_blocks.assemble` takes them (whole chunks and
    cut text), the rows it holds, the key (ts µs, source) of its last row, and whether more rows follow."""

    pieces: list[Mapping[str, Any]]
    count: int
    last: tuple[int, str] | None
    more: bool
    #: Rows after the stored hours are still wanted from here (µs): at most ``limit - count`` + 1 of them.
    live_from: int | None


def plan_page(
    chunks: Sequence[Mapping[str, Any]],
    *,
    start_us: int,
    end_us: int,
    after: tuple[int, str] | None,
    limit: int,
    fetched_all: bool,
    max_spread: Decimal,
) -> ChunkPage | None:
    """The page of at most ``limit`` rows with ``ts`` in ``[start, end)`` and key after ``after`` from ``chunks``
    (:data:`READ_SQL`'s rows), or None when the chunks do not provably cover it (then it is rendered live)."""
    pieces: list[Mapping[str, Any]] = []
    count, last = 0, None
    for c in chunks:
        if c["gap"] or c["max_spread"] != max_spread:
            return None  # rows before it are not stored (or not as the API renders them now)
        n = c["rows"]
        keys = struct.unpack(f"<{n}q", c["keys"])
        codes = c["sources"]
        lo = 0
        while lo < n and (keys[lo] < start_us or (after is not None and (keys[lo], SOURCES[codes[lo]]) <= after)):
            lo += 1
        hi = lo
        while hi < n and keys[hi] < end_us and count + (hi - lo) < limit:
            hi += 1
        if hi > lo:
            pieces.append(c if lo == 0 and hi == n else _cut(c, lo, hi))
            count += hi - lo
            last = (keys[hi - 1], SOURCES[codes[hi - 1]])
        if hi < n and (keys[hi] >= end_us or count == limit):
            # The row after the page is here: more follow when it lies inside the window.
            return ChunkPage(pieces, count, last, keys[hi] < end_us, None)
    if not chunks or not fetched_all:
        return None  # nothing stored from there on, or the chunks fetched did not fill the page (short hours)
    after_stored = chunks[-1]["hour"] + BLOCK
    live_from = None if after_stored >= from_micros(end_us) else micros(after_stored)
    return ChunkPage(pieces, count, last, False, live_from)


def _cut(chunk: Mapping[str, Any], lo: int, hi: int) -> dict[str, Any]:
    """Rows ``[lo, hi)`` of a stored chunk as live text (what rendering them gives)."""
    text = isal_zlib.decompressobj(-15).decompress(chunk["deflate"])
    parts = text.split(_BETWEEN)
    if len(parts) != chunk["rows"]:
        raise ValueError(f"a stored chunk of {chunk['rows']} rows splits into {len(parts)}")
    body = _BETWEEN.join(parts[lo:hi])
    if lo:
        body = ROW_START + body
    return {"deflate": None, "body": body}
