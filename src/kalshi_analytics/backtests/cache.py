"""A columnar cache of closed months: past ~1 M snapshots/s a backtest cannot re-read PostgreSQL every run
(DESIGN.md §10: NUMERIC → float8 on the server is the bound), so a month whose partition is closed is read from
PostgreSQL once, for every market, and kept as one ``.npz`` file; later runs slice it in numpy.

Validity: a file records the partition's row count and latest ``received_at`` (snapshots are append-only, so any
late write — a backfill into that month — changes one of them) and the number of markets when it was built; if
any differs, it is rebuilt. Checking costs one ``count(*)`` of the partition per run (an index-only scan), far
less than reading it. (``pg_stat_user_tables`` counters would be free but are published up to seconds late.)
Only months with their own partition that ended more than a day ago are cached; the rest of a window (the
current month, rows in the default partition) always comes from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import Dataset, MarketFilter, MarketInfo, empty_dataset, load_dataset, load_markets

GRACE = timedelta(days=1)


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


async def _fingerprint(driver: Any, month: datetime) -> dict[str, Any] | None:
    """Rows and last receipt time of the month's partition (snapshots are append-only), and the market count;
    None when the month has no partition of its own (its rows, if any, sit in the default partition)."""
    partition = f"market_snapshots_y{month:%Y}m{month:%m}"  # formatted from a datetime: never user text
    if await driver.fetchval("SELECT to_regclass($1)", partition) is None:
        return None
    row = await driver.fetchrow(
        f"SELECT count(*) AS n, max(received_at) AS last, (SELECT count(*) FROM markets) AS markets FROM {partition}"
    )
    last = row["last"].isoformat() if row["last"] is not None else None
    return {"rows": int(row["n"]), "last_received": last, "markets": int(row["markets"])}


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
    """Month files under ``directory`` for one database."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hits = 0
        self.builds = 0

    def _path(self, month: datetime) -> Path:
        return self.directory / f"snapshots_{month:%Y_%m}.npz"

    async def month(self, engine: AsyncEngine, month: datetime, fp: dict[str, Any]) -> Dataset:
        path = self._path(month)
        if path.exists():
            ds = await asyncio.to_thread(_read, path, fp)
            if ds is not None:
                self.hits += 1
                return ds
        ds = await load_dataset(engine, month, _next_month(month), MarketFilter())
        await asyncio.to_thread(_write, path, ds, fp)
        self.builds += 1
        return ds


def _write(path: Path, ds: Dataset, fp: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"fingerprint": fp, "start": ds.start.isoformat(), "end": ds.end.isoformat()}
    markets = [
        [m.ticker, m.event_ticker, m.series_ticker, m.category, m.status, m.result,
         None if m.settlement_value is None else str(m.settlement_value),
         None if m.close_time is None else m.close_time.isoformat(), m.fees.fee_type,
         None if m.fees.fee_multiplier is None else str(m.fees.fee_multiplier)]
        for m in ds.markets
    ]  # fmt: skip
    arrays: dict[str, Any] = {"offsets": ds.offsets, "ts_us": ds.ts_us, "source": ds.source}
    arrays.update({f"col_{k}": v for k, v in ds.columns.items()})
    arrays["meta"] = np.frombuffer(json.dumps({**meta, "markets": markets}).encode(), np.uint8)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _read(path: Path, fp: dict[str, Any]) -> Dataset | None:
    from decimal import Decimal

    from kalshi_analytics.trading.fees import SeriesFees

    try:
        z = np.load(path)
        meta = json.loads(z["meta"].tobytes())
    except (OSError, ValueError, KeyError):
        return None
    if meta["fingerprint"] != fp:
        return None
    markets = [
        MarketInfo(
            t, ev, se, cat, st, res, None if sv is None else Decimal(sv),
            None if ct is None else datetime.fromisoformat(ct), SeriesFees(ft, None if fm is None else Decimal(fm)),
        )
        for t, ev, se, cat, st, res, sv, ct, ft, fm in meta["markets"]
    ]  # fmt: skip
    cols = {k[4:]: z[k] for k in z.files if k.startswith("col_")}
    start, end = datetime.fromisoformat(meta["start"]), datetime.fromisoformat(meta["end"])
    return Dataset(markets, z["offsets"], z["ts_us"], z["source"], cols, start, end)


def merge(pieces: list[Dataset], markets: list[MarketInfo], start: datetime, end: datetime) -> Dataset:
    """Concatenate time-ordered pieces (each grouped by market) into one dataset over ``markets`` (in that order),
    keeping only ``start <= ts < end``. Vectorised: one gather, no per-row Python."""
    if not markets:
        return empty_dataset(start, end)
    index = {m.ticker: k for k, m in enumerate(markets)}
    lo, hi = int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)
    sel_rows, sel_market = [], []
    for p in pieces:
        counts = np.diff(p.offsets)
        codes = np.array([index.get(m.ticker, -1) for m in p.markets], np.int64)
        mk = np.repeat(codes, counts)
        keep = (mk >= 0) & (p.ts_us >= lo) & (p.ts_us < hi)
        sel_rows.append(np.flatnonzero(keep))
        sel_market.append(mk[keep])
    mk_cat = np.concatenate(sel_market)
    if len(pieces) == 1 and (len(mk_cat) < 2 or bool(np.all(mk_cat[1:] >= mk_cat[:-1]))):
        # One piece already grouped in ``markets`` order (both come sorted by ticker): a mask, no sort.
        p, keep_rows = pieces[0], sel_rows[0]
        counts = np.bincount(mk_cat, minlength=len(markets))
        present = np.flatnonzero(counts)
        offsets = np.concatenate([[0], np.cumsum(counts[present])]).astype(np.int64)
        cols = {c: v[keep_rows] for c, v in p.columns.items()}
        return Dataset(
            [markets[k] for k in present], offsets, p.ts_us[keep_rows], p.source[keep_rows], cols, start, end
        )
    # Output order: by market, then piece (pieces are in time order), then row (already time-sorted).
    piece_id = np.concatenate([np.full(len(r), i, np.int64) for i, r in enumerate(sel_rows)])
    rows = np.concatenate(sel_rows)
    mk_all = np.concatenate(sel_market)
    order = np.lexsort((rows, piece_id, mk_all))
    src_piece, src_row = piece_id[order], rows[order]
    n = len(order)
    out_cols: dict[str, np.ndarray[Any, Any]] = {}
    ts_us = np.empty(n, np.int64)
    source = np.empty(n, np.int8)
    for i, p in enumerate(pieces):
        m = src_piece == i
        ts_us[m] = p.ts_us[src_row[m]]
        source[m] = p.source[src_row[m]]
        for c, v in p.columns.items():
            if c not in out_cols:
                out_cols[c] = np.empty(n, np.float64)
            out_cols[c][m] = v[src_row[m]]
    counts = np.bincount(mk_all, minlength=len(markets))
    present = np.flatnonzero(counts)
    offsets = np.concatenate([[0], np.cumsum(counts[present])]).astype(np.int64)
    return Dataset([markets[k] for k in present], offsets, ts_us, source, out_cols, start, end)


async def load_dataset_cached(
    engine: AsyncEngine,
    start: datetime,
    end: datetime,
    market_filter: MarketFilter | None,
    cache: ColumnarCache,
    *,
    now: datetime | None = None,
) -> Dataset:
    """Like :func:`load_dataset`, serving closed months from ``cache`` (building them on first use)."""
    import time

    t0 = time.perf_counter()
    market_filter = market_filter or MarketFilter()
    now = now or datetime.now(UTC)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        markets = await load_markets(drv, market_filter)
        plan: list[tuple[datetime, datetime, dict[str, Any] | None]] = []
        for m0, m1 in months(start, end):
            fp = None
            if m1 + GRACE <= now:
                fp = await _fingerprint(drv, m0)
            plan.append((max(m0, start), min(m1, end), fp))
        await conn.rollback()
    if not markets:
        ds = empty_dataset(start, end)
        ds.load_seconds = time.perf_counter() - t0
        return ds
    pieces: list[Dataset] = []
    for a, b, fp in plan:
        if fp is not None:
            pieces.append(await cache.month(engine, _month_start(a), fp))
        else:
            pieces.append(await load_dataset(engine, a, b, market_filter))
    ds = merge(pieces, markets, start, end)
    ds.load_seconds = time.perf_counter() - t0
    ds.meta["cache"] = {"hits": cache.hits, "builds": cache.builds}
    return ds
