"""Stored candle blocks: the sink keeps one per market and closed hour, true to the candles, and the history
route assembles a day from them — decompressed, byte for byte the answer rendered live from the candles."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.markets import candle_blocks
from kalshi_analytics.markets.service import _CANDLE_1M
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.recorder.sink import Sink
from tests.fixtures.app import market, ticker, write

T0 = datetime(2026, 10, 5, 7, 0, tzinfo=UTC)

# The route's answer before blocks existed: every candle rendered live by json_build_object and json_agg.
ISO = "replace(to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z'"
COLUMNS = [
    "prob_open",
    "prob_high",
    "prob_low",
    "prob_close",
    "price_open",
    "price_high",
    "price_low",
    "price_close",
    "yes_bid_close",
    "yes_ask_close",
    "volume",
    "open_interest",
]
OBJECT = (
    "json_build_object("
    + ", ".join(
        [f"'{c}', {ISO.format(c)}" for c in ("start", "first_ts", "last_ts")]
        + [f"'{c}', ({c})::text" for c in COLUMNS]
        + ["'snapshots', snapshots"]
    )
    + ")"
)
LIVE_SQL = f"SELECT coalesce(json_agg({OBJECT} ORDER BY start), '[]')::text FROM ({_CANDLE_1M}) c"


def snaps(t: str, start: datetime, minutes: int, every: int = 20, bid: str = "0.40") -> list[SnapshotRow]:
    return [
        SnapshotRow(
            ticker=t,
            ts=start + timedelta(seconds=every * i),
            source="poll",
            received_at=start + timedelta(seconds=every * i),
            yes_bid=D(bid) + D("0.01") * (i % 7),
            yes_ask=D(bid) + D("0.02") + D("0.01") * (i % 7),
            last_price=D("0.41"),
            volume=D(i),
        )
        for i in range(minutes * 60 // every)
    ]


async def blocks(engine: AsyncEngine, t: str) -> dict[datetime, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT start, candles FROM market_candle_blocks WHERE ticker = :t"), {"t": t})
        return {r.start: r.candles for r in rows}


async def live(engine: AsyncEngine, t: str, start: datetime, end: datetime) -> str:
    async with engine.connect() as conn:
        sql = LIVE_SQL.replace(":ticker", ":t").replace(":start", ":s").replace(":end", ":e")
        return str((await conn.execute(text(sql), {"t": t, "s": start, "e": end})).scalar_one())


def expected(t: str, start: datetime, end: datetime, array: str) -> bytes:
    def iso(ts: datetime) -> str:
        return ts.isoformat().replace("+00:00", "Z")

    head = {"ticker": t, "interval": "1m", "start": iso(start), "end": iso(end), "next_cursor": None}
    return (json.dumps(head, separators=(",", ":"))[:-1] + ',"candles":' + array + "}").encode()


async def history(client: httpx.AsyncClient, t: str, start: datetime, end: datetime) -> httpx.Response:
    params = {"interval": "1m", "start": start.isoformat(), "end": end.isoformat()}
    # Built from the database every time, not taken from the response cache.
    return await client.get(f"/api/v1/markets/{t}/history", params=params, headers={"Cache-Control": "no-cache"})


def test_an_assembly_of_blocks_and_live_text_is_one_valid_gzip_member() -> None:
    parts = [b'{"a" : 1}, {"a" : 2}', b'{"a" : 3}', b'{"a" : 4}, {"a" : 5}', b'{"a" : 6}']
    stored = [candle_blocks.pack("T", T0, 1, p) for p in parts]
    rows: list[dict[str, Any]] = [b._asdict() for b in stored]
    rows[1] = {"deflate": None, "body": parts[1].decode()}
    body, etag = candle_blocks.assemble(b'{"x":[', rows, b"]}")
    # gzip.decompress checks the CRC-32 and the length in the trailer.
    assert gzip.decompress(body) == b'{"x":[' + b", ".join(parts) + b"]}"
    # One member: a decoder that stops after the first member (as httpx's does) reads it all.
    assert zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(body) == gzip.decompress(body)
    # The tag depends on the text, not on which parts were stored.
    rows[1] = stored[1]._asdict()
    again, same = candle_blocks.assemble(b'{"x":[', rows, b"]}")
    assert gzip.decompress(again) == gzip.decompress(body)
    assert same == etag


async def test_the_sink_stores_closed_hours_and_the_route_answers_them_byte_for_byte(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    t = ticker()
    await write(engine, market(t), *snaps(t, T0 + timedelta(minutes=30), 150))  # 07:30 → 10:00
    # 07:00 and 08:00 are closed; 09:00 is not (no later data yet): it stays live.
    assert await blocks(engine, t) == {T0: 30, T0 + timedelta(hours=1): 60}
    for start, end in [
        (T0, T0 + timedelta(hours=3)),  # two blocks and a live hour
        (T0 + timedelta(minutes=45), T0 + timedelta(hours=2, minutes=10)),  # partial edges around a block
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),  # exactly one block
        (
            T0 + timedelta(hours=1, minutes=15, seconds=30),
            T0 + timedelta(hours=1, minutes=45, seconds=30),
        ),  # inside one
        (T0, T0 + timedelta(hours=1, minutes=20)),  # a block, then the start of the next one cut
        (T0 + timedelta(minutes=50), T0 + timedelta(hours=1)),  # the end of a block cut
        (T0 - timedelta(days=1), T0 + timedelta(days=1)),  # everything
    ]:
        r = await history(client, t, start, end)
        assert r.status_code == 200, r.text
        assert r.headers["content-encoding"] == "gzip" or len(r.content) < 4096  # assembled from stored blocks
        assert r.content == expected(t, start, end, await live(engine, t, start, end))
        stored = await client.get(r.url)  # the cache's copy, and a client without gzip
        unzipped = await client.get(
            f"/api/v1/markets/{t}/history",
            params={"interval": "1m", "start": start.isoformat(), "end": end.isoformat()},
            headers={"Accept-Encoding": "identity"},
        )
        assert stored.content == unzipped.content == r.content
        assert unzipped.headers.get("content-encoding") is None
        assert unzipped.headers["etag"] == r.headers["etag"]


async def test_a_late_write_into_a_closed_hour_replaces_its_block(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    t = ticker()
    await write(engine, market(t), *snaps(t, T0, 120))
    assert T0 in await blocks(engine, t)
    before = await history(client, t, T0, T0 + timedelta(hours=1))
    # A repair writes into 07:00 (a new minute and a changed one), from a sink that never saw this market.
    at = T0 + timedelta(minutes=5, seconds=7)
    await write(engine, SnapshotRow(t, at, "backfill", at, yes_bid=D("0.90"), yes_ask=D("0.91")))
    after = await history(client, t, T0, T0 + timedelta(hours=1))
    hour = T0 + timedelta(hours=1)
    assert after.content == expected(t, T0, hour, await live(engine, t, T0, hour))
    assert after.content != before.content
    assert after.headers["etag"] != before.headers["etag"]
    # The next write past 07:00 renders it again; the answer stays the same.
    await write(engine, *snaps(t, T0 + timedelta(hours=2), 5))
    assert T0 in await blocks(engine, t)
    again = await history(client, t, T0, T0 + timedelta(hours=1))
    assert again.content == after.content


async def test_a_sink_renders_at_most_its_budget_a_batch_and_catches_up(engine: AsyncEngine) -> None:
    tickers = [ticker() for _ in range(6)]
    async with Sink(engine, batch_max_seconds=0.01, candle_blocks_per_batch=2) as sink:
        for t in tickers:
            await sink.put(market(t))
        for t in tickers:
            for row in snaps(t, T0, 61, every=60):  # 07:00 and the first minute of 08:00
                await sink.put(row)
        await sink.flush()
        assert sink.blocks.queued > 0
        for i in range(10):  # later batches, each with room for two
            for t in tickers:
                await sink.put(snaps(t, T0 + timedelta(hours=1, minutes=1 + i), 1, every=60)[0])
            await sink.flush()
        assert sink.blocks.queued == 0
    for t in tickers:
        assert await blocks(engine, t) == {T0: 60}


@pytest.mark.parametrize("minutes", [1, 30])
async def test_an_answer_without_stored_blocks_is_rendered_as_before(
    engine: AsyncEngine, client: httpx.AsyncClient, minutes: int
) -> None:
    t = ticker()
    await write(engine, market(t), *snaps(t, T0, minutes))
    r = await history(client, t, T0, T0 + timedelta(hours=1))
    assert r.content == expected(t, T0, T0 + timedelta(hours=1), await live(engine, t, T0, T0 + timedelta(hours=1)))


async def test_a_window_of_whole_hours_reads_its_blocks_alone_in_time_order(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    # Such a window (the dashboard's day, the bench's) is read by a statement without the live edge queries.
    sql = candle_blocks.read_sql("x")
    bare = candle_blocks.read_sql("x", head=False, tail=False)
    assert "market_candles_1m" in sql
    assert "market_candles_1m" not in bare
    assert "ORDER BY start" in bare
    t = ticker()
    await write(engine, market(t), *snaps(t, T0, 4 * 60 + 5))  # 07:00 → 11:05: four closed hours
    # A repair in 07:00 and 09:00 stores their blocks again, after the others (the heap is no longer in time order).
    for at in (T0 + timedelta(minutes=7, seconds=3), T0 + timedelta(hours=2, minutes=31, seconds=3)):
        await write(engine, SnapshotRow(t, at, "backfill", at, yes_bid=D("0.90"), yes_ask=D("0.91")))
    await write(engine, *snaps(t, T0 + timedelta(hours=4, minutes=5), 1))
    assert await blocks(engine, t) == {T0 + timedelta(hours=h): 60 for h in range(4)}
    for start, end in [(T0, T0 + timedelta(hours=4)), (T0 + timedelta(hours=1), T0 + timedelta(hours=3))]:
        r = await history(client, t, start, end)
        assert r.status_code == 200, r.text
        assert r.headers["content-encoding"] == "gzip"
        assert r.content == expected(t, start, end, await live(engine, t, start, end))
