"""The list routes' JSON, rendered by PostgreSQL field by field, is byte for byte what json_build_object and
json_agg gave before (nulls, microseconds, and titles that need escaping included)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import SnapshotRow
from tests.fixtures.app import market, ticker, write

T0 = datetime(2026, 9, 14, 3, 0, tzinfo=UTC)


def iso(col: str) -> str:
    return f"replace(to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z'"


SPREAD = "(yes_bid IS NOT NULL AND yes_ask IS NOT NULL AND yes_ask - yes_bid BETWEEN 0 AND 0.10)"
PROB = f"CASE WHEN {SPREAD} THEN round((yes_bid + yes_ask) / 2, 4) ELSE last_price END"
SOURCE = f"CASE WHEN {SPREAD} THEN 'mid' WHEN last_price IS NOT NULL THEN 'last' END"
NUMBERS = [
    "yes_bid",
    "yes_ask",
    "no_bid",
    "no_ask",
    "last_price",
    "yes_bid_size",
    "yes_ask_size",
    "volume",
    "open_interest",
]
SNAPSHOT = (
    "json_build_object('ticker', ticker, 'ts', {ts}, 'received_at', {rx}, 'source', source, 'sequence', sequence, "
    + ", ".join(f"'{c}', ({c})::text" for c in NUMBERS)
    + f", 'status', status, 'implied_probability', ({PROB})::text, 'implied_probability_source', {SOURCE})"
).format(ts=iso("ts"), rx=iso("received_at"))


async def test_a_raw_page_is_json_build_objects_text(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    t = ticker()
    rows = [
        SnapshotRow(t, T0 + timedelta(seconds=i, microseconds=137 * i), "poll", T0 + timedelta(seconds=i))
        if i % 3 == 0
        else SnapshotRow(
            t,
            T0 + timedelta(seconds=i, microseconds=137 * i),
            "websocket",
            T0 + timedelta(seconds=i, milliseconds=5),
            sequence=i,
            yes_bid=D("0.4100"),
            yes_ask=D("0.43") if i % 2 else D("0.60"),
            no_bid=D("0.57"),
            no_ask=D("0.59"),
            last_price=D("0.4200"),
            yes_bid_size=D("12.50"),
            yes_ask_size=D(3),
            volume=D(1000 + i),
            open_interest=D(20),
            status="active",
        )
        for i in range(12)
    ]
    await write(engine, market(t), *rows)
    end = T0 + timedelta(minutes=1)
    r = await client.get(
        f"/api/v1/markets/{t}/history", params={"start": T0.isoformat(), "end": end.isoformat(), "limit": 100}
    )
    assert r.status_code == 200, r.text
    async with engine.connect() as conn:
        items = (
            await conn.execute(
                text(
                    f"SELECT json_agg({SNAPSHOT} ORDER BY ts, source)::text FROM market_snapshots "
                    "WHERE ticker = :t AND ts >= :s AND ts < :e"
                ),
                {"t": t, "s": T0, "e": end},
            )
        ).scalar_one()
    assert r.content == ('{"ticker":' + json.dumps(t) + ',"next_cursor":null,"items":' + items + "}").encode()


async def test_a_market_list_is_json_build_objects_text(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    series = ticker("KXJSON")
    t = ticker()
    title = 'Will "it" rain?\\ \n\t\u00e9t\u00e9 \u2014 \x01 ok'
    await write(
        engine,
        market(t, series_ticker=series, title=title, category=None, close_time=T0 + timedelta(microseconds=5)),
        SnapshotRow(t, T0, "poll", T0, yes_bid=D("0.2"), yes_ask=D("0.9"), no_bid=D("0.1"), last_price=None),
    )
    r = await client.get("/api/v1/markets", params={"series": series})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["title"] == title
    fields = (
        "'ticker', ticker, 'title', title, 'event_ticker', event_ticker, 'series_ticker', series_ticker, "
        f"'category', category, 'status', status, 'close_time', {iso('close_time')}, 'volume', volume::text, "
        "'open_interest', open_interest::text, 'yes_price', yes_bid::text, 'no_price', no_bid::text, "
        "'yes_bid', yes_bid::text, 'yes_ask', yes_ask::text, 'last_price', last_price::text, "
        f"'implied_probability', ({PROB})::text, 'implied_probability_source', {SOURCE}, "
        f"'change_24h', (({PROB}) - ({PROB}))::text, "  # the one snapshot is both the latest and the day-old one
        f"'last_updated', {iso('ts')}"
    )
    async with engine.connect() as conn:
        items = (
            await conn.execute(
                text(
                    f"SELECT json_agg(json_build_object({fields}))::text FROM markets m, LATERAL (SELECT ts, yes_bid, "
                    "yes_ask, no_bid, last_price FROM market_snapshots s WHERE s.ticker = m.ticker ORDER BY ts DESC "
                    "LIMIT 1) s WHERE m.ticker = :t"
                ),
                {"t": t},
            )
        ).scalar_one()
    assert r.content == ('{"next_cursor":null,"items":' + items + "}").encode()
