"""A columnar cache of snapshots month by month — the current month included — kept up to date incrementally.

Why: past ~1 M snapshots/s a backtest cannot re-read PostgreSQL every run (the server's NUMERIC → float8 casts
bound a COPY at ~0.7 M rows/s per backend; DESIGN.md §10), so each month's snapshots of every ticker are read
once into one ``.npy`` file per column, memory-mapped when read back (a run touches only the pages it uses), and
later runs slice them.

Exactness rests on snapshots being append-only (rows are inserted, never updated; only whole months are dropped):
then a month whose row count is what it was holds the same rows. A month's entry records its row count and latest
``received_at`` in the database snapshot its rows were read in. For each month of a window, inside one
REPEATABLE READ transaction (:meth:`ColumnarCache.month`):

1. count the month's rows (its partition counted whole; one scan on the server);
2. the same count: the files are the month — nothing is read;
3. more rows: read the rows received after the entry's latest receipt time minus :data:`MARGIN` (a late row with
   an older ``ts`` has a fresh ``received_at``, so it is among them), drop those already cached (same ticker,
   ts, source), and insert the rest in place. The cache then holds rows that are all in the month; if there are
   exactly ``count`` of them, they *are* the month. If not — a row committed more than ``MARGIN`` after it was
   received, e.g. held by the recorder through a database outage — the month is read again in full;
4. fewer rows or no entry: read the whole month (two COPYs in parallel, in the counting transaction's exported
   snapshot).

A run's window is then sliced out of the months (views of the files when its markets are contiguous in them).
When every month of a window has files, :func:`speculate` serves them before counting, so the count (step 1)
runs on the server while the simulation runs here; the result is used only if the count confirms the files
(:meth:`Speculation.confirm`), else the run starts again on the updated cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import (
    Dataset,
    MarketFilter,
    MarketInfo,
    columns_of,
    copy_month_rows,
    decoded_columns,
    empty_dataset,
    load_markets,
    month_copy_sql,
)

#: How long after its receipt a row may commit and still be found by an incremental update (older: a full read).
MARGIN = timedelta(minutes=10)
_FORMAT = 2
# Rows of one ticker are ordered by (ts, source) as PostgreSQL sorts the text: backfill < poll < websocket;
# the dataset's source codes are poll 0, websocket 1, backfill 2.
_SOURCE_RANK = np.array([1, 2, 0], np.int64)
_GEN = re.compile(r"[0-9a-f]{32}")

IntArray = npt.NDArray[np.int64]


def _month_start(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _next_month(t: datetime) -> datetime:
    return datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)


def months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    out = []
    m = _month_start(start.astimezone(UTC))
    while m < end:
        out.append((m, _next_month(m)))
        m = _next_month(m)
    return out


@dataclass
class Month:
    """One month's snapshots of every ticker: segment ``i`` (``tickers[i]``, ``hashes[i]`` its 64-bit hash) is rows
    ``offsets[i]:offsets[i+1]``, ordered by (ts, source). ``count`` and ``last_received`` describe the database
    snapshot the rows were read in."""

    tickers: list[str]
    hashes: IntArray
    offsets: IntArray
    ts_us: IntArray
    source: npt.NDArray[np.int8]
    columns: dict[str, npt.NDArray[np.float64]]
    count: int
    last_received: datetime
    folder: Path | None = None  # where its files are (None: not written yet)

    def keys(self, a: int, b: int) -> IntArray:
        """Sort keys of rows ``a:b`` (within one segment): ts, then source as PostgreSQL orders it."""
        return self.ts_us[a:b] * 4 + _SOURCE_RANK[self.source[a:b]]


async def cache_key(engine: AsyncEngine) -> str:
    """A folder name for one database (server identity + database name)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        sysid = await drv.fetchval("SELECT system_identifier FROM pg_control_system()")
        name = await drv.fetchval("SELECT current_database()")
        await conn.rollback()
    return f"{sysid}-{name}"


class ColumnarCache:
    """Month entries under ``directory`` for one database; counts what each call did."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hits = 0  # months used as they were
        self.updates = 0  # months brought up to date incrementally
        self.builds = 0  # months read in full
        self.rows_added = 0  # rows the incremental updates inserted

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "updates": self.updates, "builds": self.builds, "rows_added": self.rows_added}

    async def month(self, engine: AsyncEngine, m0: datetime, *, again: bool = True) -> Month | None:
        """Month ``m0``'s snapshots as the database holds them now (None: it has none). ``again``: when another
        process replaced the entry while this one updated it (its files are gone), start over once from that."""
        entry = await asyncio.to_thread(_read, self.directory, m0)
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            drv: Any = raw.driver_connection
            async with drv.transaction(isolation="repeatable_read", readonly=True):
                n = await _count(drv, m0)
                if n == 0:
                    return None
                if entry is not None and entry.count == n:  # append-only: the same count is the same rows
                    self.hits += 1
                    return entry
                last = await drv.fetchval(
                    "SELECT max(received_at) FROM market_snapshots WHERE ts >= $1 AND ts < $2", m0, _next_month(m0)
                )
                snapshot = await drv.fetchval("SELECT pg_export_snapshot()")
                at = _Snapshot(engine, drv, snapshot, m0, n, last)
                new: _Pending | None = None
                if entry is not None and n > entry.count:
                    new = await _update(at, entry)
                    if new is not None:
                        self.updates += 1
                        self.rows_added += new.count - entry.count
                if new is None:
                    new = _Pending.of(await _build(at))
                    self.builds += 1
            await conn.rollback()
        del entry  # its maps: the update read what it needed
        try:
            return await asyncio.to_thread(_write, self.directory, m0, new)
        except FileNotFoundError:
            if not again:
                raise
            return await self.month(engine, m0, again=False)


# ------------------------------------------------------------------------------------------- reading PostgreSQL
async def _count(drv: Any, m0: datetime) -> int:
    """The month's rows: its partition counted whole when it has one (a month's partition holds exactly that month:
    PostgreSQL routes every row of its range there), else the month's range of the parent."""
    partition = f"market_snapshots_y{m0:%Y}m{m0:%m}"  # formatted from a datetime: never user text
    if await drv.fetchval("SELECT to_regclass($1)", partition) is not None:
        return int(await drv.fetchval(f"SELECT count(*) FROM {partition}"))
    n = await drv.fetchval("SELECT count(*) FROM market_snapshots WHERE ts >= $1 AND ts < $2", m0, _next_month(m0))
    return int(n)


@dataclass(frozen=True)
class _Snapshot:
    """One month as a REPEATABLE READ transaction sees it: its connection, exported snapshot, rows and latest
    receipt time."""

    engine: AsyncEngine
    drv: Any
    snapshot: str
    m0: datetime
    count: int
    last: datetime


def _segments(h: IntArray) -> tuple[IntArray, IntArray]:
    """Starts and ends of the runs of equal ticker hashes (rows come ordered by ticker)."""
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]]) if len(h) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(h)].astype(np.int64)
    return starts.astype(np.int64), ends


async def _names(drv: Any, hashes: Sequence[int], m0: datetime, since: datetime | None) -> dict[int, str]:
    """Ticker names of 64-bit ticker hashes: from ``markets``, else from the month's snapshots themselves."""
    wanted = sorted(set(hashes))
    rows = list(
        await drv.fetch(
            "SELECT ticker, hashtextextended(ticker, 0) AS h FROM markets WHERE hashtextextended(ticker, 0) = ANY($1)",
            wanted,
        )
    )
    rest = sorted(set(wanted) - {int(r["h"]) for r in rows})
    if rest:  # snapshots of tickers without a markets row
        cond = "" if since is None else " AND received_at > $4"
        args = [m0, _next_month(m0), rest] + ([since] if since is not None else [])
        rows += await drv.fetch(
            "SELECT DISTINCT ticker, hashtextextended(ticker, 0) AS h FROM market_snapshots "
            f"WHERE ts >= $1 AND ts < $2 AND hashtextextended(ticker, 0) = ANY($3){cond}",
            *args,
        )
    names: dict[int, str] = {}
    for r in rows:
        h, t = int(r["h"]), r["ticker"]
        if names.setdefault(h, t) != t:
            raise RuntimeError(f"64-bit hash collision between tickers {names[h]!r} and {t!r}")
    missing = set(wanted) - set(names)
    if missing:
        raise RuntimeError(f"{len(missing)} ticker hashes of the month's snapshots have no name")
    return names


async def _copy(at: _Snapshot, since: datetime | None) -> dict[str, Any]:
    """Rows of the month (received after ``since``, when given) in ``at``'s snapshot; a full month in two ticker
    ranges copied in parallel."""
    engine, drv, snapshot, m0 = at.engine, at.drv, at.snapshot, at.m0
    m1 = _next_month(m0)
    if since is not None:
        decoders = [await copy_month_rows(engine, snapshot, month_copy_sql(since=True), [m0, m1, since])]
    else:
        n = await drv.fetchval("SELECT count(*) FROM markets")
        pivot = await drv.fetchval("SELECT ticker FROM markets ORDER BY ticker OFFSET $1 LIMIT 1", n // 2)
        if pivot is None:
            decoders = [await copy_month_rows(engine, snapshot, month_copy_sql(), [m0, m1])]
        else:
            decoders = list(
                await asyncio.gather(
                    copy_month_rows(engine, snapshot, month_copy_sql(hi=True), [m0, m1, pivot]),
                    copy_month_rows(engine, snapshot, month_copy_sql(lo=True), [m0, m1, pivot]),
                )
            )
    return decoded_columns(decoders)


async def _build(at: _Snapshot) -> Month:
    n = at.count
    cols = await _copy(at, None)
    h = cols.pop("h")
    if len(h) != n:
        raise RuntimeError(f"read {len(h)} snapshots of {at.m0:%Y-%m} where the same snapshot counted {n}")
    starts, _ = _segments(h)
    hashes = h[starts]
    if len(np.unique(hashes)) != len(hashes):  # two tickers of one hash, not adjacent in ticker order
        raise RuntimeError("64-bit hash collision between tickers of one month")
    names = await _names(at.drv, hashes.tolist(), at.m0, None)
    source = cols.pop("src")
    ts_us, columns = columns_of(cols)
    return Month(
        [names[x] for x in hashes.tolist()], hashes, np.r_[starts, len(h)].astype(np.int64), ts_us, source,
        columns, n, at.last,
    )  # fmt: skip


def _placed(
    entry: Month, h: IntArray, ts_us: IntArray, keys: IntArray
) -> tuple[list[IntArray], list[IntArray], IntArray, list[tuple[int, int, int]]]:
    """Where rows read again (ordered by ticker, ts, source) go in ``entry``: per cached ticker the insertion points
    of its new rows and which rows those are (rows already cached dropped), how many each ticker gains, and the
    tickers not cached yet as (hash, first row, end)."""
    seg_of = {x: i for i, x in enumerate(entry.hashes.tolist())}
    added = np.zeros(len(entry.hashes), np.int64)
    points: list[IntArray] = []
    take: list[IntArray] = []
    fresh: list[tuple[int, int, int]] = []
    starts, ends = _segments(h)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        i = seg_of.get(int(h[a]))
        if i is None:
            fresh.append((int(h[a]), a, b))
            continue
        lo, hi = int(entry.offsets[i]), int(entry.offsets[i + 1])
        # Only the cached tail at or after the earliest new row can hold a duplicate or follow an insertion.
        lo += int(np.searchsorted(entry.ts_us[lo:hi], ts_us[a], side="left"))
        cached = entry.keys(lo, hi)
        pos = np.searchsorted(cached, keys[a:b], side="left")
        dup = pos < len(cached)
        dup[dup] = cached[pos[dup]] == keys[a:b][dup]
        keep = np.flatnonzero(~dup)
        if len(keep):
            points.append(lo + pos[keep])
            take.append(a + keep)
            added[i] += len(keep)
    return points, take, added, fresh


async def _update(at: _Snapshot, entry: Month) -> _Pending | None:
    """``entry`` plus the rows received since its latest receipt time (less :data:`MARGIN`); None when that does
    not give the month's ``n`` rows (then the caller reads it in full)."""
    n = at.count
    since = entry.last_received - MARGIN
    cols = await _copy(at, since)
    h = cols.pop("h")
    if entry.count + len(h) < n:  # not even every row received since then would make up the count
        return None
    src = cols.pop("src")
    ts_us, columns = columns_of(cols)
    points, take, added, fresh = _placed(entry, h, ts_us, ts_us * 4 + _SOURCE_RANK[src])
    new_rows = int(added.sum()) + sum(b - a for _, a, b in fresh)
    if entry.count + new_rows != n:
        return None
    names = await _names(at.drv, [x for x, _, _ in fresh], at.m0, since) if fresh else {}
    if len(set(names.values()) & set(entry.tickers)):
        return None  # a cached ticker under another hash cannot be: read the month again
    pos = np.concatenate([*points, np.full(sum(b - a for _, a, b in fresh), entry.count, np.int64)])
    rows = np.concatenate([*take, *(np.arange(a, b) for _, a, b in fresh)]).astype(np.int64)
    offsets = entry.offsets + np.r_[0, np.cumsum(added)]
    tail = np.cumsum([b - a for _, a, b in fresh], dtype=np.int64) + offsets[-1]
    assert entry.folder is not None  # an entry read from its files
    folder = entry.folder
    values = {"ts_us": ts_us[rows], "source": src[rows], **{f"col_{c}": v[rows] for c, v in columns.items()}}
    # Where the new rows land among the old (stable, as np.insert orders them); every column is laid out the same.
    order = np.argsort(pos, kind="stable")
    is_new = np.zeros(n, np.bool_)
    is_new[pos[order] + np.arange(len(pos))] = True
    is_old = ~is_new
    buffers: dict[np.dtype[Any], np.ndarray[Any, Any]] = {}

    def inserted(name: str) -> np.ndarray[Any, Any]:
        # One output buffer per dtype, reused column after column (fresh pages are dear), each old column mapped
        # only while it is copied (its pages leave with the map).
        old = np.load(folder / f"{name}.npy", mmap_mode="r")
        out = buffers.get(old.dtype)
        if out is None:
            out = buffers[old.dtype] = np.empty(n, old.dtype)
        out[is_old] = old
        out[is_new] = values[name][order]
        del old
        return out

    arrays: dict[str, Callable[[], np.ndarray[Any, Any]]] = {
        "hashes": partial(_given, np.r_[entry.hashes, np.array([x for x, _, _ in fresh], np.int64)]),
        "offsets": partial(_given, np.r_[offsets, tail]),
        **{name: partial(inserted, name) for name in values},
    }
    return _Pending(entry.tickers + [names[x] for x, _, _ in fresh], list(entry.columns), n, at.last, arrays)


# ------------------------------------------------------------------------------------------------- the files
def _meta_path(directory: Path, m0: datetime) -> Path:
    return directory / f"snapshots_{m0:%Y_%m}.json"


def _gen_dir(directory: Path, m0: datetime, gen: str) -> Path:
    return directory / f"snapshots_{m0:%Y_%m}.{gen}"


@dataclass
class _Pending:
    """A month to write: its arrays made one at a time (``name`` → maker), so writing holds one new column at once."""

    tickers: list[str]
    columns: list[str]
    count: int
    last_received: datetime
    arrays: dict[str, Callable[[], np.ndarray[Any, Any]]]

    @classmethod
    def of(cls, m: Month) -> _Pending:
        arrays: dict[str, np.ndarray[Any, Any]] = {
            "hashes": m.hashes, "offsets": m.offsets, "ts_us": m.ts_us, "source": m.source,
        }  # fmt: skip
        arrays.update({f"col_{c}": v for c, v in m.columns.items()})
        makers: dict[str, Callable[[], np.ndarray[Any, Any]]] = {k: partial(_given, v) for k, v in arrays.items()}
        return cls(m.tickers, list(m.columns), m.count, m.last_received, makers)


def _given(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return a


def _write(directory: Path, m0: datetime, month: _Pending) -> Month:
    """Store ``month`` as a new generation of files, switch the entry to it atomically (a reader sees the old or
    the new generation, never half of one) and remove the other generations; returns it memory-mapped."""
    directory.mkdir(parents=True, exist_ok=True)
    gen = uuid.uuid4().hex
    folder = _gen_dir(directory, m0, gen)
    folder.mkdir()
    try:
        for name, make in month.arrays.items():
            np.save(folder / f"{name}.npy", np.ascontiguousarray(make()))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    meta = {
        "format": _FORMAT,
        "gen": gen,
        "count": month.count,
        "last_received": month.last_received.isoformat(),
        "columns": month.columns,
        "tickers": month.tickers,
    }
    path = _meta_path(directory, m0)
    tmp = path.with_suffix(f".{gen}.tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, path)
    for other in directory.glob(f"snapshots_{m0:%Y_%m}.*"):
        if other.is_dir() and other.name != folder.name and _GEN.fullmatch(other.suffix[1:]):
            shutil.rmtree(other, ignore_errors=True)  # a reader holding its maps keeps them (POSIX)
    mapped = _read(directory, m0)
    if mapped is None:
        raise RuntimeError(f"cache entry {path} vanished while being written")
    return mapped


def _read(directory: Path, m0: datetime) -> Month | None:
    path = _meta_path(directory, m0)
    try:
        meta = json.loads(path.read_text())
        if meta.get("format") != _FORMAT or not _GEN.fullmatch(meta["gen"]):
            return None
        folder = _gen_dir(directory, m0, meta["gen"])

        def load(name: str) -> np.ndarray[Any, Any]:
            arr: np.ndarray[Any, Any] = np.load(folder / f"{name}.npy", mmap_mode="r").view(np.ndarray)
            return arr

        return Month(
            list(meta["tickers"]), load("hashes"), load("offsets"), load("ts_us"), load("source"),
            {c: load(f"col_{c}") for c in meta["columns"]}, int(meta["count"]),
            datetime.fromisoformat(meta["last_received"]), folder,
        )  # fmt: skip
    except (OSError, ValueError, KeyError):
        return None


# ------------------------------------------------------------------------------------------------ a run's slice
def merge(pieces: Sequence[Month], markets: list[MarketInfo], start: datetime, end: datetime) -> Dataset:
    """The rows of ``markets`` (in that order) with ``start <= ts < end`` out of time-ordered month ``pieces``: per
    market, its segment of each month, cut to the window by binary search. Views of the files when the pieces
    hold the selected rows contiguously (one month, markets in file order), else one gather per column."""
    lo_us, hi_us = int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)
    index = [{t: i for i, t in enumerate(p.tickers)} for p in pieces]
    offsets_of = [p.offsets.tolist() for p in pieces]
    runs: list[tuple[int, int, int]] = []  # (piece, first row, end row), by market then piece
    kept: list[MarketInfo] = []
    offsets = [0]
    for m in markets:
        size = 0
        for pi, p in enumerate(pieces):
            i = index[pi].get(m.ticker)
            if i is None:
                continue
            a, b = offsets_of[pi][i], offsets_of[pi][i + 1]
            ts = p.ts_us
            if ts[a] < lo_us:
                a += int(np.searchsorted(ts[a:b], lo_us, side="left"))
            if a < b and ts[b - 1] >= hi_us:
                b = a + int(np.searchsorted(ts[a:b], hi_us, side="left"))
            if a >= b:
                continue
            if runs and runs[-1][0] == pi and runs[-1][2] == a:
                runs[-1] = (pi, runs[-1][1], b)
            else:
                runs.append((pi, a, b))
            size += b - a
        if size:
            kept.append(m)
            offsets.append(offsets[-1] + size)
    if not runs:
        return empty_dataset(start, end)

    def gather(get: Any) -> np.ndarray[Any, Any]:
        if len(runs) == 1:
            pi, a, b = runs[0]
            return get(pieces[pi])[a:b]  # type: ignore[no-any-return]
        return np.concatenate([get(pieces[pi])[a:b] for pi, a, b in runs])

    columns = {c: gather(lambda p, c=c: p.columns[c]) for c in pieces[0].columns}
    return Dataset(
        kept,
        np.asarray(offsets, np.int64),
        gather(lambda p: p.ts_us),
        gather(lambda p: p.source),
        columns,
        start,
        end,
    )


_PARTITION = re.compile(r"market_snapshots_y(\d{4})m(\d{2})")


async def months_with_rows(drv: Any, start: datetime, end: datetime) -> list[datetime]:
    """The months of ``[start, end)`` that can hold snapshots: those with a partition of their own, and those with
    rows in the default partition (it is small: rows land there only before their month's partition exists)."""
    names = await drv.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'market_snapshots'::regclass"
    )
    found = set()
    for r in names:
        if m := _PARTITION.fullmatch(r["relname"]):
            found.add(datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC))
    if await drv.fetchval("SELECT to_regclass('market_snapshots_default')") is not None:
        rows = await drv.fetch(
            "SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') AS m FROM market_snapshots_default "
            "WHERE ts >= $1 AND ts < $2",
            start,
            end,
        )
        found |= {r["m"].replace(tzinfo=UTC) for r in rows}
    return [m0 for m0, _ in months(start, end) if m0 in found]


@dataclass
class Speculation:
    """A window served from the cache's files as they are, before PostgreSQL said whether they are current."""

    dataset: Dataset
    engine: AsyncEngine
    cache: ColumnarCache
    entries: list[tuple[datetime, Month]]

    async def confirm(self) -> bool:
        """Whether every month still holds exactly the rows of its files (the check :meth:`ColumnarCache.month`
        makes). When True the dataset is what :func:`load_dataset_cached` would give; when False, discard it."""
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            drv: Any = raw.driver_connection
            async with drv.transaction(readonly=True):
                # One backend: the simulation runs beside this count, and on a small machine parallel workers
                # would only take turns with it.
                await drv.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                for m0, entry in self.entries:
                    if await _count(drv, m0) != entry.count:
                        return False
            await conn.rollback()
        self.cache.hits += len(self.entries)
        self.dataset.meta["cache"] = self.cache.stats()
        return True


async def speculate(
    engine: AsyncEngine, start: datetime, end: datetime, market_filter: MarketFilter | None, cache: ColumnarCache
) -> Speculation | None:
    """The window out of the cache's files without counting first, so that the counting (a scan of each month on
    the server) can overlap the simulation; None when a month has no entry yet. Use the result only once
    :meth:`Speculation.confirm` says so."""
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        markets = await load_markets(drv, market_filter or MarketFilter())
        candidates = await months_with_rows(drv, start, end) if markets else []
        await conn.rollback()
    if not markets or not candidates:
        return None
    entries = []
    for m0 in candidates:
        entry = await asyncio.to_thread(_read, cache.directory, m0)
        if entry is None:
            return None
        entries.append((m0, entry))
    ds = merge([e for _, e in entries], markets, start, end)
    ds.load_seconds = time.perf_counter() - t0
    return Speculation(ds, engine, cache, entries)


async def load_dataset_cached(
    engine: AsyncEngine,
    start: datetime,
    end: datetime,
    market_filter: MarketFilter | None,
    cache: ColumnarCache,
) -> Dataset:
    """Like :func:`~.data.load_dataset`, every month of the window served by ``cache`` (brought up to date first)."""
    t0 = time.perf_counter()
    market_filter = market_filter or MarketFilter()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        markets = await load_markets(drv, market_filter)
        candidates = await months_with_rows(drv, start, end) if markets else []
        await conn.rollback()
    if not markets:
        ds = empty_dataset(start, end)
        ds.load_seconds = time.perf_counter() - t0
        return ds
    pieces = [p for m0 in candidates if (p := await cache.month(engine, m0)) is not None]
    ds = merge(pieces, markets, start, end) if pieces else empty_dataset(start, end)
    ds.load_seconds = time.perf_counter() - t0
    ds.meta["cache"] = cache.stats()
    return ds
