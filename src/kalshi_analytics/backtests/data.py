"""Loading snapshots for a backtest as columns, straight from PostgreSQL.

One binary ``COPY (SELECT …) TO STDOUT`` whose every column is fixed-width and never NULL (prices cast to
float8 with NaN for NULL, the ticker as its 64-bit ``hashtextextended(ticker, 0)``, ``ts`` as sent: binary
timestamptz is int8 microseconds since 2000-01-01). Each row then has the same 128-byte layout, so the stream is
decoded by ``numpy.frombuffer`` with a structured big-endian dtype: no Python per row. Rows come ordered by
(ticker, ts, source), so each market is one contiguous slice.

Measured (bench/backtest_throughput.py): the server's NUMERIC → float8 casts dominate, not the transfer or the
decoding; so the markets are split into ``parallel`` ticker ranges copied concurrently on separate connections
(one server backend each), and every month is served from a columnar cache kept current (:mod:`.cache`), whose
month reads (:func:`month_copy_sql`) take every ticker, identified by a 64-bit hash, in one exported snapshot.
Decoded rows are gathered column by column so a load holds one copy of the data plus one column, not two copies.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.books import BookTape
from kalshi_analytics.strategies.base import FIELDS, FloatArray, MarketArrays
from kalshi_analytics.trading.fees import SeriesFees

SOURCES = ("poll", "websocket", "backfill")
_PRICE_COLS = ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "yes_bid_size", "yes_ask_size", "volume")
_SQL_EXPR = {
    "yes_bid": "s.yes_bid",
    "yes_ask": "s.yes_ask",
    # Kalshi's books are bids only: the NO ask is 1 − the YES bid, the NO bid 1 − the YES ask.
    "no_bid": "COALESCE(s.no_bid, 1 - s.yes_ask)",
    "no_ask": "COALESCE(s.no_ask, 1 - s.yes_bid)",
    "last_price": "s.last_price",
    "yes_bid_size": "s.yes_bid_size",
    "yes_ask_size": "s.yes_ask_size",
    "volume": "s.volume",
}
#: The snapshot columns a backtest reads, beside ``ts`` and ``source``, in its order.
PRICE_COLUMNS: tuple[str, ...] = _PRICE_COLS


def float_sql(column: str) -> str:
    """The SQL of one of :data:`PRICE_COLUMNS` over ``market_snapshots s`` as the backtest loads it: float8, NaN
    for NULL (the live runner reads its rows with the same expressions, so both see the same numbers)."""
    return f"COALESCE(({_SQL_EXPR[column]})::float8, 'NaN'::float8)"


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00Z in Unix microseconds
_PARSE_BYTES = 8 << 20


class MarketFilter(BaseModel):
    """Which markets a backtest covers; empty lists mean "any". All given conditions must hold; categories
    match whatever their case."""

    model_config = ConfigDict(extra="forbid")

    categories: list[str] = Field(default_factory=list)
    series: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    tickers: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.categories or self.series or self.events or self.tickers)


@dataclass(frozen=True)
class MarketInfo:
    ticker: str
    event_ticker: str | None
    series_ticker: str | None
    category: str | None
    status: str | None
    result: str | None
    settlement_value: Decimal | None
    close_time: datetime | None
    fees: SeriesFees
    settled_at: datetime | None = None  # when the exchange settled it (the recorder's ``markets.settled_at``)
    #: Each close time the market was given, as (known from, close time) in Unix seconds, oldest first: what a
    #: strategy sees at each snapshot (``close_time`` above is only the latest). ``None`` (data built in memory)
    #: states that ``close_time`` was known throughout.
    close_times: tuple[tuple[float, float], ...] | None = None

    def close_time_column(self, ts: FloatArray) -> FloatArray:
        """The close time known at each of ``ts`` (Unix seconds; NaN before any was known)."""
        if self.close_times is None:
            close = np.nan if self.close_time is None else self.close_time.timestamp()
            return np.full(len(ts), close)
        if not self.close_times:
            return np.full(len(ts), np.nan)
        known = np.array([k for k, _ in self.close_times])
        values = np.array([c for _, c in self.close_times])
        i = np.searchsorted(known, ts, side="right") - 1  # known at or before the snapshot's time
        return np.where(i >= 0, values[np.maximum(i, 0)], np.nan)


@dataclass
class Dataset:
    """Snapshots of many markets, concatenated; market ``k`` is rows ``offsets[k]:offsets[k+1]``."""

    markets: list[MarketInfo]
    offsets: npt.NDArray[np.int64]
    ts_us: npt.NDArray[np.int64]  # exchange time, microseconds since the epoch (exact)
    source: npt.NDArray[np.int8]  # index into SOURCES
    columns: dict[str, FloatArray]  # FIELDS (``ts`` in float seconds)
    start: datetime
    end: datetime
    load_seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    books: BookTape | None = None  # recorded order books, loaded when the fill model walks them

    @property
    def rows(self) -> int:
        return len(self.ts_us)

    def market(self, k: int) -> MarketArrays:
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        info = self.markets[k]
        columns = {c: v[a:b] for c, v in self.columns.items()}
        columns["close_time"] = info.close_time_column(columns["ts"])
        return MarketArrays(info.ticker, columns)

    def field(self, name: str) -> FloatArray:
        """One of :data:`FIELDS` over every row; ``close_time`` (as known at each snapshot) is derived here
        from the markets' histories, never stored with the snapshots."""
        if name != "close_time":
            return self.columns[name]
        ts = self.columns["ts"]
        out = np.empty(len(ts))
        for k, info in enumerate(self.markets):
            a, b = int(self.offsets[k]), int(self.offsets[k + 1])
            out[a:b] = info.close_time_column(ts[a:b])
        return out

    def save(self, path: str) -> None:
        """A columnar cache file (``.npz``); :meth:`load` reads it back (memory-mapped arrays are not needed:
        the file is read once per worker)."""
        arrays: dict[str, Any] = {"offsets": self.offsets, "ts_us": self.ts_us, "source": self.source}
        arrays.update({f"col_{k}": v for k, v in self.columns.items()})
        np.savez(path, **arrays)

    @classmethod
    def from_npz(cls, path: str, markets: list[MarketInfo], start: datetime, end: datetime) -> Dataset:
        z = np.load(path)
        cols = {k[4:]: z[k] for k in z.files if k.startswith("col_")}
        return cls(markets, z["offsets"], z["ts_us"], z["source"], cols, start, end)


def empty_dataset(start: datetime, end: datetime) -> Dataset:
    return Dataset(
        [],
        np.zeros(1, np.int64),
        np.zeros(0, np.int64),
        np.zeros(0, np.int8),
        {c: np.zeros(0) for c in FIELDS if c != "close_time"},
        start,
        end,
    )


def _where(f: MarketFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, values in (
        # Categories are words people type ("politics"); the exchange writes "Politics".
        ("lower(coalesce(m.category, se.category))", [c.lower() for c in f.categories]),
        ("m.series_ticker", f.series),
        ("m.event_ticker", f.events),
        ("m.ticker", f.tickers),
    ):
        if values:
            args.append(list(values))
            clauses.append(f"{column} = ANY(${len(args)}::text[])")
    return (" AND ".join(clauses) or "true"), args


async def load_markets(driver: Any, market_filter: MarketFilter) -> list[MarketInfo]:
    where, args = _where(market_filter)
    rows = await driver.fetch(
        "SELECT m.ticker, m.event_ticker, m.series_ticker, coalesce(m.category, se.category) AS category, m.status, "
        "m.result, m.settlement_value, m.close_time, se.fee_type, se.fee_multiplier, m.settled_at "
        f"FROM markets m LEFT JOIN series se ON se.ticker = m.series_ticker WHERE {where} ORDER BY m.ticker",
        *args,
    )
    history: dict[str, list[tuple[float, float]]] = {}
    for h in await driver.fetch(
        "SELECT ticker, known_at, close_time FROM market_close_times WHERE ticker = ANY($1::text[]) "
        "ORDER BY ticker, known_at",
        [r["ticker"] for r in rows],
    ):
        history.setdefault(h["ticker"], []).append((h["known_at"].timestamp(), h["close_time"].timestamp()))
    return [
        MarketInfo(
            r["ticker"],
            r["event_ticker"],
            r["series_ticker"],
            r["category"],
            r["status"],
            r["result"],
            r["settlement_value"],
            r["close_time"],
            SeriesFees(r["fee_type"], r["fee_multiplier"]),
            r["settled_at"],
            tuple(history.get(r["ticker"], ())),
        )
        for r in rows
    ]


def _ts_literal(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("backtest window times must be timezone-aware")
    text = t.astimezone(UTC).isoformat()
    if not re.fullmatch(r"[0-9T:.+\-]+", text):  # our own formatting; never user text inside SQL
        raise ValueError(f"bad timestamp {t!r}")
    return f"'{text}'::timestamptz"


def snapshot_copy_sql(start: datetime, end: datetime, tickers_param: int = 1) -> str:
    cols = ", ".join(f"COALESCE(({_SQL_EXPR[c]})::float8, 'NaN'::float8)" for c in _PRICE_COLS)
    return (
        "SELECT hashtextextended(s.ticker, 0), s.ts, "
        "(CASE s.source WHEN 'poll' THEN 0 WHEN 'websocket' THEN 1 ELSE 2 END)::int2, "
        f"{cols} FROM market_snapshots s WHERE s.ticker = ANY(${tickers_param}::text[]) "
        f"AND s.ts >= {_ts_literal(start)} AND s.ts < {_ts_literal(end)} ORDER BY s.ticker, s.ts, s.source"
    )


def row_dtype(id_type: str) -> np.dtype[Any]:
    """The binary COPY record of :func:`snapshot_copy_sql` and :func:`month_copy_sql` (``id_type`` ``>i8``)."""
    return np.dtype(
        [("nf", ">i2"), ("l0", ">i4"), ("h", id_type), ("l1", ">i4"), ("ts", ">i8"), ("l2", ">i4"), ("src", ">i2")]
        + [item for c in _PRICE_COLS for item in ((f"l_{c}", ">i4"), (c, ">f8"))]
    )


# 64 bits: among 32-bit hashes two of 100,000 tickers collide more often than not (birthday bound), and a
# collision refuses the load; among 64-bit ones it is a ~1e-9 event.
_ROW = row_dtype(">i8")


class _Decoder:
    """Decodes a binary COPY stream of fixed-width records incrementally (bounded extra memory)."""

    def __init__(self, dtype: np.dtype[Any] = _ROW) -> None:
        self.dtype = dtype
        self.id_type = np.int64 if dtype["h"].itemsize == 8 else np.int32
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.header_done = False
        self.parts: list[dict[str, np.ndarray]] = []
        self.rest = b""

    async def __call__(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.pending_bytes += len(chunk)
        if self.pending_bytes >= _PARSE_BYTES:
            self._parse()

    def _parse(self) -> None:
        buf = self.rest + b"".join(self.pending)
        self.pending, self.pending_bytes = [], 0
        pos = 0
        if not self.header_done:
            if len(buf) < 19:
                self.rest = buf
                return
            if buf[:11] != _SIGNATURE:
                raise ValueError("not a binary COPY stream")
            ext = int.from_bytes(buf[15:19], "big")
            pos = 19 + ext
            self.header_done = True
        body = memoryview(buf)[pos:]
        size = self.dtype.itemsize
        n = len(body) // size
        recs = np.frombuffer(body, self.dtype, count=n)
        if n:
            part: dict[str, np.ndarray[Any, Any]] = {
                "h": recs["h"].astype(self.id_type),
                "ts": recs["ts"].astype(np.int64),
                "src": recs["src"].astype(np.int8),
            }
            for c in _PRICE_COLS:
                part[c] = recs[c].astype(np.float64)
            self.parts.append(part)
        self.rest = bytes(body[n * size :])

    def finish(self) -> None:
        self._parse()
        if self.rest not in (b"\xff\xff", b""):
            raise ValueError(f"unexpected {len(self.rest)} trailing bytes in the COPY stream")


def decoded_columns(decoders: Sequence[_Decoder]) -> dict[str, np.ndarray]:
    """The decoders' rows, in order, as one array per field. Column by column, each decoder's pieces released as
    soon as they are copied: the peak is one dataset plus one column, not two datasets."""
    for d in decoders:
        d.finish()
    parts = [p for d in decoders for p in d.parts]
    for d in decoders:
        d.parts = []
    keys = ["h", "ts", "src", *_PRICE_COLS]
    if not parts:
        return {k: np.zeros(0) for k in keys}
    out: dict[str, np.ndarray] = {}
    for k in keys:
        out[k] = parts[0][k] if len(parts) == 1 else np.concatenate([p[k] for p in parts])
        for p in parts:
            del p[k]
    return out


def columns_of(cols: dict[str, np.ndarray]) -> tuple[npt.NDArray[np.int64], dict[str, FloatArray]]:
    """Decoded COPY fields as the dataset's ``ts_us`` and ``columns`` (the price arrays are taken, not copied)."""
    ts_us = cols.pop("ts")
    ts_us += _PG_EPOCH_US
    columns: dict[str, FloatArray] = {"ts": ts_us / 1e6}
    for c in _PRICE_COLS:
        columns[c] = cols.pop(c)
    return ts_us, columns


async def _copy_range(engine: AsyncEngine, start: datetime, end: datetime, tickers: list[str]) -> _Decoder:
    decoder = _Decoder()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_from_query(snapshot_copy_sql(start, end), tickers, output=decoder, format="binary")
        await conn.rollback()
    return decoder


_MONTH_ROW = _ROW  # the same record: one decoder for both
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+-[0-9]+")


def month_copy_sql(*, since: bool = False, lo: bool = False, hi: bool = False) -> str:
    """Every snapshot with ``$1 <= ts < $2`` (of any ticker, listed in ``markets`` or not), as :data:`_MONTH_ROW`
    records ordered by (ticker, ts, source); the ticker as its 64-bit ``hashtextextended`` (a collision among a
    month's tickers is a ~1e-9 event, checked where names are known). Options, in parameter order: ``since``
    (``received_at > $n``), ``lo`` / ``hi`` (a ticker range ``[lo, hi)``)."""
    cols = ", ".join(f"COALESCE(({_SQL_EXPR[c]})::float8, 'NaN'::float8)" for c in _PRICE_COLS)
    conds = ["s.ts >= $1", "s.ts < $2"]
    for flag, cond in ((since, "s.received_at > ${}"), (lo, "s.ticker >= ${}"), (hi, "s.ticker < ${}")):
        if flag:
            conds.append(cond.format(len(conds) + 1))
    return (
        "SELECT hashtextextended(s.ticker, 0), s.ts, "
        "(CASE s.source WHEN 'poll' THEN 0 WHEN 'websocket' THEN 1 ELSE 2 END)::int2, "
        f"{cols} FROM market_snapshots s WHERE {' AND '.join(conds)} ORDER BY s.ticker, s.ts, s.source"
    )


async def copy_month_rows(engine: AsyncEngine, snapshot: str, sql: str, args: Sequence[Any]) -> _Decoder:
    """Run one :func:`month_copy_sql` COPY on its own connection inside the exported ``snapshot`` (so parallel
    COPYs and the caller's counts see the same rows)."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):  # our own pg_export_snapshot() value; never user text inside SQL
        raise ValueError(f"bad snapshot id {snapshot!r}")
    decoder = _Decoder(_MONTH_ROW)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        async with driver.transaction(isolation="repeatable_read", readonly=True):
            await driver.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            await driver.copy_from_query(sql, *args, output=decoder, format="binary")
        await conn.rollback()
    return decoder


async def load_dataset(
    engine: AsyncEngine,
    start: datetime,
    end: datetime,
    market_filter: MarketFilter | None = None,
    *,
    parallel: int = 2,
) -> Dataset:
    """Markets matching ``market_filter`` and their snapshots with ``start <= ts < end``, as columns.

    ``parallel`` concurrent COPYs (ticker ranges) use that many connections of ``engine``'s pool.
    """
    import asyncio
    import time

    t0 = time.perf_counter()
    market_filter = market_filter or MarketFilter()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        markets = await load_markets(driver, market_filter)
        if not markets:
            ds = empty_dataset(start, end)
            ds.load_seconds = time.perf_counter() - t0
            return ds
        tickers = [m.ticker for m in markets]
        hashes = await driver.fetch("SELECT t, hashtextextended(t, 0) AS h FROM unnest($1::text[]) AS t", tickers)
        await conn.rollback()
    parts = max(1, min(parallel, len(tickers)))
    bounds = [len(tickers) * i // parts for i in range(parts + 1)]
    decoders = await asyncio.gather(
        *(_copy_range(engine, start, end, tickers[a:b]) for a, b in itertools.pairwise(bounds))
    )
    cols = decoded_columns(decoders)
    if len(cols["h"]) == 0:
        ds = empty_dataset(start, end)
        ds.load_seconds = time.perf_counter() - t0
        return ds
    by_hash: dict[int, list[int]] = {}
    index_of = {m.ticker: k for k, m in enumerate(markets)}
    for r in hashes:
        by_hash.setdefault(int(r["h"]), []).append(index_of[r["t"]])
    h = cols["h"]
    n = len(h)
    # Group boundaries: rows are ordered by ticker, so each change of hash starts a market.
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    ends = np.r_[starts[1:], n].astype(np.int64)
    kept: list[MarketInfo] = []
    offsets = [0]
    for a, b in zip(starts, ends, strict=True):
        ks = by_hash[int(h[a])]
        if len(ks) != 1:  # a hash collision between two selected tickers: refuse rather than mix them up
            raise RuntimeError("ticker hash collision between selected tickers; narrow the market filter")
        kept.append(markets[ks[0]])
        offsets.append(int(b))
    src = cols.pop("src")
    ts_us, columns = columns_of(cols)
    ds = Dataset(kept, np.asarray(offsets, np.int64), ts_us, src, columns, start, end)
    ds.load_seconds = time.perf_counter() - t0
    return ds


def tickers_of(ds: Dataset) -> Sequence[str]:
    return [m.ticker for m in ds.markets]
