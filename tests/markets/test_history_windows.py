"""History windows a user meets at once: candles past 10,000 per request (a cursor), and an empty answer that
says where the market's data is (the imported 2025 games answered ``[]`` to the default last-day window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.web.cursors import encode_cursor
from tests.fixtures.app import assert_problem, market, ticker, write

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GAME = datetime(2025, 3, 10, 0, 30, tzinfo=UTC)


def snap(t: str, ts: datetime) -> SnapshotRow:
    return SnapshotRow(ticker=t, ts=ts, source="backfill", received_at=ts, yes_bid=D("0.40"), yes_ask=D("0.42"))


async def all_pages(client: httpx.AsyncClient, t: str, params: dict[str, Any]) -> tuple[list[str], int]:
    """Every candle start over all pages, and the number of pages."""
    starts: list[str] = []
    pages, cursor = 0, None
    while True:
        r = await client.get(f"/api/v1/markets/{t}/history", params=params | ({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["candles"]) <= 10_000
        starts += [c["start"] for c in body["candles"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return starts, pages
        assert pages < 50


async def test_candles_past_10000_come_with_a_cursor(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    minutes = [0, 5_000, 9_999, 10_000, 12_000, 25_000, 29_999]
    await write(engine, market(t), *(snap(t, T0 + timedelta(minutes=m, seconds=1)) for m in minutes))
    window = {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=30_000)).isoformat(), "interval": "1m"}
    starts, pages = await all_pages(client, t, window)
    expected = [(T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z") for m in minutes]
    assert starts == expected  # in order, none twice, none missed
    assert pages == 3  # [0, 10,000), [10,000, 20,000), then the next data: 25,000 — no empty page between

    # Rolled up: 1h candles over 600 days (14,400 buckets), data on the first and the last day.
    t2 = ticker()
    await write(engine, market(t2), snap(t2, T0 + timedelta(minutes=30)), snap(t2, T0 + timedelta(days=599, hours=5)))
    long = {"start": T0.isoformat(), "end": (T0 + timedelta(days=600)).isoformat(), "interval": "1h"}
    starts, pages = await all_pages(client, t2, long)
    assert starts == ["2026-01-01T00:00:00Z", (T0 + timedelta(days=599, hours=5)).isoformat().replace("+00:00", "Z")]
    assert pages == 2

    # A day of candles is one page, as before.
    day = {"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat(), "interval": "1m"}
    one = (await client.get(f"/api/v1/markets/{t}/history", params=day)).json()
    assert one["next_cursor"] is None
    assert len(one["candles"]) == 1


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor("candles:5m", "2026-01-01T00:00:00+00:00"),  # another interval's
        encode_cursor("snapshots", "2026-01-01T00:00:00+00:00", "poll"),  # a raw page's
        encode_cursor("candles:1m", "9999-12-31T23:59:59-14:00"),
        encode_cursor("candles:1m", 5),
    ],
)
async def test_a_candle_cursor_not_of_this_listing_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    params = {"interval": "1m", "start": "2026-01-01", "end": "2026-02-01", "cursor": cursor}
    body = assert_problem(await client.get("/api/v1/markets/ANY/history", params=params), 422)
    assert body["errors"][0]["field"] == "query.cursor"


async def test_an_empty_history_says_when_the_markets_data_starts_and_ends(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    game = ticker("KXNBAGAME")
    await write(engine, market(game, status="finalized"), *(snap(game, GAME + timedelta(minutes=m)) for m in range(90)))
    first, last = "2025-03-10T00:30:00Z", "2025-03-10T01:59:00Z"
    for params in ({}, {"interval": "1m"}, {"interval": "1h"}, {"start": "-1w"}):
        body = (await client.get(f"/api/v1/markets/{game}/history", params=params)).json()
        assert body.get("items", body.get("candles")) == [], params
        assert (body["data_start"], body["data_end"]) == (first, last), params

    # An answer with data has no need of them.
    body = (await client.get(f"/api/v1/markets/{game}/history", params={"start": "2025-03-10"})).json()
    assert len(body["items"]) == 90
    assert "data_start" not in body

    nothing = ticker()
    await write(engine, market(nothing))
    body = (await client.get(f"/api/v1/markets/{nothing}/history")).json()
    assert (body["items"], body["data_start"], body["data_end"]) == ([], None, None)
