"""The bulk-write path for snapshots: idempotent, and as fast as COPY when the data is new.

COPY is the fastest way into PostgreSQL (DESIGN.md §10) but cannot skip duplicates; ``INSERT … ON CONFLICT
DO NOTHING`` can, at about half the speed. So a batch is COPYed optimistically and only falls back to the
idempotent path when it actually contains a duplicate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kalshi_analytics.recorder.rows import SnapshotRow

SNAPSHOT_COLUMNS: tuple[str, ...] = SnapshotRow._fields
SOURCES = ("poll", "websocket", "backfill")


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection (same transaction)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


@dataclass(frozen=True)
class WriteResult:
    new: int
    duplicates: int

    @property
    def total(self) -> int:
        return self.new + self.duplicates

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.new + other.new, self.duplicates + other.duplicates)


_STAGING = "_ka_snapshot_staging"
_COLS = ", ".join(SNAPSHOT_COLUMNS)
# COPY's text format: backslash, tab and newlines must be escaped inside a value; \N is NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_NULL = "\\N"


def _text(v: str | None) -> str:
    if v is None:
        return _NULL
    # Tickers and statuses almost never hold these; four C-level scans beat an unconditional translate.
    if "\\" in v or "\t" in v or "\n" in v or "\r" in v:
        return v.translate(_COPY_ESCAPES)
    return v


def _json(v: dict[str, Any] | str | None) -> str:
    if v is None:
        return _NULL
    if not isinstance(v, str):
        v = json.dumps(v, separators=(",", ":"), default=str)
    return v.translate(_COPY_ESCAPES)


def _time_text(v: datetime) -> str:
    """ISO 8601 in UTC (so the first seven characters name the UTC month, which picks the partition)."""
    offset = v.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {v!r}: snapshot times must be timezone-aware (UTC)")
    return (v.astimezone(UTC) if offset else v).isoformat()


@dataclass(frozen=True)
class PreparedSnapshots:
    """A batch already encoded for COPY, split by the monthly partition its rows belong to.

    Encoding is the client's main cost, so it can be done while the previous batch is being written.
    """

    by_partition: dict[str, bytes]  # partition name -> COPY text payload
    rows: int

    @property
    def payload(self) -> bytes:
        return b"".join(self.by_partition.values())


def prepare_snapshots(rows: Sequence[SnapshotRow]) -> PreparedSnapshots:
    """Validate and encode rows in COPY text format (far cheaper on the client than binary COPY of Decimals).

    Formatting a datetime costs more than anything else in a row, so each distinct instant is formatted once
    per batch (a poll's rows share their receipt time).
    """
    times: dict[datetime, str] = {}
    n = _NULL
    groups: dict[str, list[str]] = {}
    for r in rows:
        ticker, ts, source, received, seq, yb, ya, nb, na, lp, ybs, yas, vol, oi, status, raw = r
        if source not in SOURCES:
            raise ValueError(f"unknown snapshot source {source!r}; expected one of {', '.join(SOURCES)}")
        ts_text = times.get(ts)
        if ts_text is None:
            ts_text = times[ts] = _time_text(ts)
        received_text = times.get(received)
        if received_text is None:
            received_text = times[received] = _time_text(received)
        partition = f"market_snapshots_y{ts_text[:4]}m{ts_text[5:7]}"
        lines = groups.get(partition)
        if lines is None:
            lines = groups[partition] = []
        lines.append(
            f"{_text(ticker)}\t{ts_text}\t{source}\t{received_text}\t{n if seq is None else seq}\t"
            f"{n if yb is None else str(yb)}\t{n if ya is None else str(ya)}\t{n if nb is None else str(nb)}\t"
            f"{n if na is None else str(na)}\t{n if lp is None else str(lp)}\t{n if ybs is None else str(ybs)}\t"
            f"{n if yas is None else str(yas)}\t{n if vol is None else str(vol)}\t{n if oi is None else str(oi)}\t"
            f"{_text(status)}\t{_json(raw)}\n"
        )
    return PreparedSnapshots({p: "".join(lines).encode() for p, lines in groups.items()}, rows=len(rows))


async def prepare_snapshots_cooperatively(rows: Sequence[SnapshotRow], slice_rows: int = 100) -> PreparedSnapshots:
    """:func:`prepare_snapshots` in slices, yielding to the event loop between them.

    Encoding runs while the previous batch is being written: between slices the loop keeps feeding the
    server the previous COPY, so client and server work at the same time (a thread would fight the event loop
    for the GIL instead). Slices are small (~0.5 ms) because every round trip of the write waits for the
    slice in progress: 500-row slices cost a third of the throughput (bench/README.md).
    """
    parts: dict[str, list[bytes]] = {}
    for start in range(0, len(rows), slice_rows):
        for partition, payload in prepare_snapshots(rows[start : start + slice_rows]).by_partition.items():
            parts.setdefault(partition, []).append(payload)
        await asyncio.sleep(0)
    return PreparedSnapshots({p: b"".join(chunks) for p, chunks in parts.items()}, rows=len(rows))


async def _chunks(payload: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    # An async source keeps COPY on the event loop; a file object would be read through the thread pool.
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


async def write_snapshots(
    session: AsyncSession | AsyncConnection, rows: Sequence[SnapshotRow] | PreparedSnapshots
) -> WriteResult:
    """Write ``rows`` idempotently inside the caller's transaction; report new rows and duplicates.

    The caller commits (one unit of work per batch). Duplicates — the same (ticker, ts, source) already stored
    or repeated within the batch — are skipped, never an error.

    New data, the common case, goes straight in with one COPY per monthly partition inside a savepoint
    (straight into the partition: routing each row through the parent costs ~70 % more server time,
    bench/README.md). Only when that COPY meets a duplicate is it rolled back and the batch sent through a
    staging table and ``INSERT … ON CONFLICT DO NOTHING``, whose row count separates new rows from duplicates.
    """
    result, _ = await _write(session, rows, returning=False)
    return result


async def write_snapshots_returning_new(
    session: AsyncSession | AsyncConnection, rows: Sequence[SnapshotRow]
) -> tuple[WriteResult, list[SnapshotRow]]:
    """:func:`write_snapshots`, also telling which rows were new (what derived data such as candles may count).

    Of rows repeated within the batch, the first is the one reported.
    """
    result, keys = await _write(session, rows, returning=True)
    if keys is None:
        return result, list(rows)
    new: list[SnapshotRow] = []
    for r in rows:
        k = (r.ticker, r.ts, r.source)
        if k in keys:
            keys.discard(k)
            new.append(r)
    return result, new


async def _write(
    session: AsyncSession | AsyncConnection, rows: Sequence[SnapshotRow] | PreparedSnapshots, *, returning: bool
) -> tuple[WriteResult, set[tuple[str, datetime, str]] | None]:
    """The write; with ``returning``, the keys of the new rows (``None`` = every row was new)."""
    batch = rows if isinstance(rows, PreparedSnapshots) else prepare_snapshots(rows)
    if batch.rows == 0:
        return WriteResult(0, 0), None
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    # Through SQLAlchemy first: that opens the caller's transaction, which the raw COPY below then joins.
    await conn.exec_driver_sql("SAVEPOINT ka_bulk")
    pg = await _driver(conn)
    existing = {
        r[0]
        for r in await pg.fetch(
            "SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) AND relispartition",
            list(batch.by_partition),
        )
    }
    try:
        for partition, payload in batch.by_partition.items():
            # A month without its partition yet goes through the parent, which routes it to the default.
            target = partition if partition in existing else "market_snapshots"
            await pg.copy_to_table(target, source=_chunks(payload), columns=SNAPSHOT_COLUMNS)
    except asyncpg.UniqueViolationError:
        await pg.execute("ROLLBACK TO SAVEPOINT ka_bulk")
    else:
        await pg.execute("RELEASE SAVEPOINT ka_bulk")
        return WriteResult(new=batch.rows, duplicates=0), None

    # The staging table lives for the connection; ON COMMIT DELETE ROWS empties it at each batch boundary.
    await pg.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE market_snapshots INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await pg.execute(f"TRUNCATE {_STAGING}")
    await pg.copy_to_table(_STAGING, source=_chunks(batch.payload), columns=SNAPSHOT_COLUMNS)
    insert = f"INSERT INTO market_snapshots ({_COLS}) SELECT {_COLS} FROM {_STAGING} ON CONFLICT DO NOTHING"
    keys: set[tuple[str, datetime, str]] | None = None
    if returning:
        records = await pg.fetch(insert + " RETURNING ticker, ts, source")
        keys = {(r[0], r[1], r[2]) for r in records}
        new = len(records)
    else:
        status = await pg.execute(insert)
        new = int(status.rsplit(" ", 1)[-1])
    await pg.execute(f"TRUNCATE {_STAGING}")
    return WriteResult(new=new, duplicates=batch.rows - new), keys
