"""Stored snapshot chunks: the sink keeps each closed hour's snapshots rendered in chunks, true to the rows, and
the raw history route pages through them — decompressed, byte for byte the pages rendered live, cursors and
all; a page the chunks do not provably cover is rendered live."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.markets import candle_blocks, snapshot_chunks
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.recorder.sink import Sink
from tests.fixtures.app import market, ticker, write

T0 = datetime(2026, 10, 5, 7, 0, tzinfo=UTC)
H = timedelta(hours=1)
FRESH = {"Cache-Control": "no-cache"}  # built from the database, not taken from the response cache


def snaps(t: str, start: datetime, minutes: int, every: int = 20) -> list[SnapshotRow]:
    rows = []
    for i in range(minutes * 60 // every):
        ts = start + timedelta(seconds=every * i, microseconds=(i % 3) * 250_000)
        rows.append(
            SnapshotRow(
                ticker=t,
                ts=ts,
                source="poll",
                received_at=ts + timedelta(milliseconds=120),
                sequence=i if i % 5 else None,
                yes_bid=D("0.40") + D("0.01") * (i % 7) if i % 11 else None,
                yes_ask=D("0.42") + D("0.01") * (i % 9),
                last_price=D("0.41") if i % 4 else None,
                volume=D(i),
                status="active",
            )
        )
    return rows


async def chunks(engine: AsyncEngine, t: str) -> dict[datetime, list[int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT hour, rows FROM market_snapshot_chunks WHERE ticker = :t ORDER BY hour, seq"), {"t": t}
        )
        out: dict[datetime, list[int]] = {}
        for r in rows:
            out.setdefault(r.hour, []).append(r.rows)
        return out


async def drop_chunks(engine: AsyncEngine, t: str, hour: datetime | None = None) -> None:
    async with engine.begin() as conn:
        sql = "DELETE FROM market_snapshot_chunks WHERE ticker = :t" + (" AND hour = :h" if hour else "")
        await conn.execute(text(sql), {"t": t, "h": hour})


async def pages(client: httpx.AsyncClient, t: str, **params: Any) -> list[bytes]:
    """Every page of a window, following next_cursor; each answer decompressed (httpx does) and checked."""
    out: list[bytes] = []
    query = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}
    while True:
        r = await client.get(f"/api/v1/markets/{t}/history", params=query, headers={"Cache-Control": "no-cache"})
        assert r.status_code == 200, r.text
        out.append(r.content)
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out
        query["cursor"] = cursor
        assert len(out) < 500


WINDOWS: list[dict[str, Any]] = [
    {"start": T0, "end": T0 + 4 * H, "limit": 100},  # stored hours, then the hour being written (live)
    {"start": T0, "end": T0 + 4 * H, "limit": 1000},
    {"start": T0, "end": T0 + 4 * H, "limit": 50},  # pages of whole chunks
    {"start": T0, "end": T0 + 4 * H, "limit": 7},  # every page cuts a chunk
    {"start": T0, "end": T0 + 4 * H, "limit": 101},  # the first page ends between the two rows of one instant
    {"start": T0 + timedelta(minutes=41, seconds=3), "end": T0 + 2 * H + timedelta(minutes=5), "limit": 33},
    {"start": T0 + H + timedelta(minutes=10), "end": T0 + H + timedelta(minutes=20), "limit": 100},  # inside one
    {"start": T0 + H, "end": T0 + 2 * H, "limit": 180},  # exactly one hour
    {"start": T0 + H, "end": T0 + 2 * H, "limit": 179},  # one row short: a cursor on the hour's last row
    {"start": T0 - timedelta(days=1), "end": T0 + timedelta(days=1), "limit": 1000},  # before the first row
]


async def test_raw_pages_from_stored_chunks_equal_the_pages_rendered_live(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    t = ticker()
    rows = snaps(t, T0 + timedelta(minutes=30), 180)  # 07:30 → 10:30, a row each 20 s
    tie = rows[100]  # a websocket row at the same instant as a poll: the keyset's second key decides
    rows.append(SnapshotRow(t, tie.ts, "websocket", tie.received_at, yes_bid=D("0.45"), yes_ask=D("0.47")))
    await write(engine, market(t), *rows)
    # 07:00, 08:00 and 09:00 are closed (later rows were written); 10:00 is being written: no chunks yet.
    assert await chunks(engine, t) == {T0: [50, 40], T0 + H: [50, 50, 50, 31], T0 + 2 * H: [50, 50, 50, 30]}

    small = {"start": T0.isoformat(), "end": (T0 + H).isoformat(), "limit": "7"}  # 4 kB: too small to compress
    url = f"/api/v1/markets/{t}/history"
    assert (await client.get(url, params=small, headers=FRESH)).headers.get("content-encoding") == "gzip"  # assembled
    stored = [await pages(client, t, **w) for w in WINDOWS]
    await drop_chunks(engine, t)
    live = [await pages(client, t, **w) for w in WINDOWS]
    assert (await client.get(url, params=small, headers=FRESH)).headers.get("content-encoding") is None  # rendered
    for window, a, b in zip(WINDOWS, stored, live, strict=True):
        assert a == b, window
    assert sum(len(p) for p in live) > 100  # the windows walked many pages


async def test_a_page_assembled_from_chunks_is_gzip_with_a_stable_etag(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    t = ticker()
    await write(engine, market(t), *snaps(t, T0, 150))
    url = f"/api/v1/markets/{t}/history"
    params = {"start": T0.isoformat(), "end": (T0 + 2 * H).isoformat(), "limit": "100"}
    a = await client.get(url, params=params, headers={"Cache-Control": "no-cache"})
    b = await client.get(url, params=params, headers={"Cache-Control": "no-cache"})
    plain = await client.get(url, params=params, headers={"Accept-Encoding": "identity", "Cache-Control": "no-cache"})
    assert a.headers["content-encoding"] == "gzip"
    assert a.headers["etag"] == b.headers["etag"] == plain.headers["etag"]
    assert plain.headers.get("content-encoding") is None
    assert a.content == plain.content
    assert len(a.json()["items"]) == 100


async def test_a_late_write_into_a_closed_hour_replaces_its_chunks(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    t = ticker()
    await write(engine, market(t), *snaps(t, T0, 150))
    assert (await chunks(engine, t))[T0] == [50, 50, 50, 30]
    window = {"start": T0, "end": T0 + 2 * H, "limit": 100}
    before = await pages(client, t, **window)
    at = T0 + timedelta(minutes=5, seconds=7)
    await write(engine, SnapshotRow(t, at, "backfill", at, yes_bid=D("0.90"), yes_ask=D("0.91")))
    # Its chunks went in the write's transaction (and, rendered again by that batch, hold the new row).
    assert (await chunks(engine, t)).get(T0) in (None, [50, 50, 50, 31])
    after = await pages(client, t, **window)
    assert after != before
    assert b'"yes_bid" : "0.9000"' in b"".join(after)
    await drop_chunks(engine, t)
    assert await pages(client, t, **window) == after


async def test_an_hour_without_chunks_between_stored_hours_is_rendered_live(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    t = ticker()
    await write(engine, market(t), *snaps(t, T0, 240))
    await drop_chunks(engine, t, T0 + H)  # as if 08:00 were still waiting for its turn to be rendered
    window = {"start": T0 + timedelta(minutes=50), "end": T0 + 3 * H, "limit": 100}
    gapped = await pages(client, t, **window)
    await drop_chunks(engine, t)
    assert await pages(client, t, **window) == gapped


def chunk_row(hour: datetime, seq: int, keys: list[int], *, gap: bool = False) -> dict[str, Any]:
    docs = [{"us": k, "source": "poll", "doc": f'{{"ticker" : "T", "n" : {k}}}'} for k in keys]
    c = snapshot_chunks.pack("T", hour, seq, D("0.10"), docs)._asdict()
    return c | {"gap": gap}


def plan(
    chunks: list[dict[str, Any]],
    start_us: int,
    limit: int,
    *,
    fetched_all: bool = True,
    max_spread: D = D("0.10"),
) -> snapshot_chunks.ChunkPage | None:
    end_us = snapshot_chunks.micros(T0 + timedelta(days=1))
    return snapshot_chunks.plan_page(
        chunks,
        start_us=start_us,
        end_us=end_us,
        after=None,
        limit=limit,
        fetched_all=fetched_all,
        max_spread=max_spread,
    )


def test_plan_page_cuts_edges_keeps_whole_chunks_and_refuses_what_it_cannot_prove() -> None:
    us = snapshot_chunks.micros(T0)
    hour = 3_600_000_000
    a = chunk_row(T0, 0, [us + i for i in range(50)])
    b = chunk_row(T0, 1, [us + 50 + i for i in range(10)])
    c = chunk_row(T0 + H, 0, [us + hour + i for i in range(5)])
    page = plan([a, b, c], us + 10, 45)
    assert page is not None
    assert (page.count, page.more, page.last) == (45, True, (us + 54, "poll"))
    assert page.pieces[0]["deflate"] is None  # cut: rows 10..49 of a
    assert page.pieces[0]["body"].startswith(b'{"ticker" : "T", "n" : ' + str(us + 10).encode())
    assert page.pieces[1]["deflate"] is None  # cut: rows 0..4 of b
    body = gzip.decompress(candle_blocks.assemble(b"[", page.pieces, b"]")[0])
    assert body.count(b'"ticker"') == 45
    whole = plan([a, b, c], us, 60)
    assert whole is not None
    assert whole.pieces[0] is a
    assert whole.pieces[1] is b
    assert whole.more
    # The stored rows end before the window does: the rows after the stored hours are wanted live.
    tail = plan([a, b, c], us, 100)
    assert tail is not None
    assert tail.count == 65
    assert tail.live_from == us + 2 * hour
    # Rows not stored before a chunk, another max_spread, or too few chunks fetched: rendered live instead.
    assert plan([a, b, c | {"gap": True}], us, 100) is None
    assert plan([a], us, 10, max_spread=D("0.05")) is None
    assert plan([a, b], us, 100, fetched_all=False) is None
    assert plan([], us, 100) is None


async def test_a_sink_renders_at_most_its_chunk_budget_a_batch_and_catches_up(engine: AsyncEngine) -> None:
    tickers = [ticker() for _ in range(4)]
    async with Sink(engine, batch_max_seconds=0.01, snapshot_chunk_hours_per_batch=1) as sink:
        for t in tickers:
            await sink.put(market(t))
        for t in tickers:
            for row in snaps(t, T0, 61, every=60):  # 07:00 and the first minute of 08:00
                await sink.put(row)
        await sink.flush()
        assert sink.snapshot_chunks.queued > 0  # candle blocks all rendered, chunks one hour a batch
        for i in range(8):
            for t in tickers:
                await sink.put(snaps(t, T0 + timedelta(hours=1, minutes=1 + i), 1, every=60)[0])
            await sink.flush()
        assert sink.snapshot_chunks.queued == 0
        assert sink.snapshot_chunks.rendered == len(tickers)
    for t in tickers:
        assert await chunks(engine, t) == {T0: [50, 10]}
