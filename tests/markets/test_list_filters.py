"""The markets list's ``status`` and ``category`` filters speak the words people use.

``status`` takes Kalshi's filter vocabulary (``unopened|open|paused|closed|settled``) and the stored statuses
(``active``, ``finalized``, …), comma-separated, in any case; anything else is a 422 naming ``query.status``.
``category`` matches whatever its case.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.app import assert_problem, market, ticker, write

STATUSES = ("initialized", "inactive", "active", "closed", "determined", "disputed", "amended", "finalized")


@pytest.fixture
async def one_of_each(engine: AsyncEngine) -> tuple[str, dict[str, str]]:
    """A series with one market in each stored status; ``{status: ticker}``."""
    series = ticker("KXSTATUS")
    tickers = {s: f"{series}-{s.upper()}" for s in STATUSES}
    await write(engine, *(market(t, series_ticker=series, status=s, category="Sports") for s, t in tickers.items()))
    return series, tickers


async def statuses(client: httpx.AsyncClient, series: str, status: str) -> set[str]:
    r = await client.get("/api/v1/markets", params={"series": series, "status": status})
    assert r.status_code == 200, r.text
    return {i["status"] for i in r.json()["items"]}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("unopened", {"initialized"}),
        ("open", {"active", "inactive"}),
        ("paused", {"inactive"}),
        ("closed", {"closed", "determined", "disputed", "amended"}),
        ("settled", {"finalized"}),
        ("active", {"active"}),  # the seed's request flow: GET /api/v1/markets?status=active
        ("finalized", {"finalized"}),
        ("OPEN", {"active", "inactive"}),
        ("open,settled", {"active", "inactive", "finalized"}),
        (" active , determined ", {"active", "determined"}),
    ],
)
async def test_status_speaks_kalshis_filter_words_and_the_stored_statuses(
    client: httpx.AsyncClient, one_of_each: tuple[str, dict[str, str]], word: str, expected: set[str]
) -> None:
    series, _ = one_of_each
    assert await statuses(client, series, word) == expected


@pytest.mark.parametrize("bad", ["bogus", "open,bogus", ",", "activ"])
async def test_an_unknown_status_is_422_naming_it(client: httpx.AsyncClient, bad: str) -> None:
    body = assert_problem(await client.get("/api/v1/markets", params={"status": bad}), 422)
    assert body["errors"][0]["field"] == "query.status"
    assert "open" in body["errors"][0]["message"]  # says what is accepted


async def test_category_matches_whatever_its_case(
    client: httpx.AsyncClient, one_of_each: tuple[str, dict[str, str]]
) -> None:
    series, tickers = one_of_each
    for word in ("sports", "SPORTS", "Sports"):
        r = await client.get("/api/v1/markets", params={"series": series, "category": word, "limit": 1000})
        assert {i["ticker"] for i in r.json()["items"]} == set(tickers.values()), word
    r = await client.get("/api/v1/markets", params={"series": series, "category": "sport"})
    assert r.json()["items"] == []


async def test_close_time_pages_read_back_the_keys_postgresql_wrote(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    series = ticker("KXCLOSE")
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    closes = [base + timedelta(microseconds=123_456), base, base - timedelta(days=400), None, base + timedelta(hours=5)]
    tickers = [f"{series}-{i}" for i in range(len(closes))]
    await write(engine, *(market(t, series_ticker=series, close_time=c) for t, c in zip(tickers, closes, strict=True)))
    by_close = sorted(zip(closes, tickers, strict=True), key=lambda p: (p[0] or datetime.max.replace(tzinfo=UTC), p[1]))
    for order, expected in (("asc", [t for _, t in by_close]), ("desc", [t for _, t in by_close][::-1])):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"series": series, "sort": "close_time", "order": order, "limit": 1}
            page = (await client.get("/api/v1/markets", params=params | ({"cursor": cursor} if cursor else {}))).json()
            seen += [i["ticker"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, order
