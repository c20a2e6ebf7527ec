"""The markets list's search (title or ticker) and its sorts by the latest quote: implied probability and the
change over 24 h, keyset-paginated, markets without a price last either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import SnapshotRow
from tests.fixtures.app import market, ticker, write

D = Decimal


def quote(t: str, ts: datetime, bid: str, ask: str) -> SnapshotRow:
    return SnapshotRow(t, ts, "poll", ts, yes_bid=D(bid), yes_ask=D(ask))


async def pages(client: httpx.AsyncClient, params: dict[str, str | int]) -> list[dict[str, object]]:
    """Every item of a listing, read a page at a time through the cursor."""
    items: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        r = await client.get("/api/v1/markets", params=params | ({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_search_matches_the_title_or_the_ticker_in_any_case(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    series = ticker("KXFIND")
    rain, snow = f"{series}-RAIN", f"{series}-SNOW"
    await write(
        engine,
        market(rain, series_ticker=series, title="Rain in Paris tomorrow?"),
        market(snow, series_ticker=series, title="Snow 100% in Oslo?"),
    )

    async def found(q: str) -> set[str]:
        r = await client.get("/api/v1/markets", params={"series": series, "q": q})
        assert r.status_code == 200, r.text
        return {i["ticker"] for i in r.json()["items"]}

    assert await found("paris") == {rain}  # the title
    assert await found(snow.lower()) == {snow}  # the ticker
    assert await found(series) == {rain, snow}
    assert await found("100%") == {snow}  # % is a character searched for, not a wildcard
    assert await found("0%") == {snow}
    assert await found("in%Oslo") == set()


async def test_implied_probability_sort_pages_through_with_unpriced_markets_last(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    series = ticker("KXPROB")
    now = datetime.now(UTC)
    probs = {"A": ("0.20", "0.22"), "B": ("0.70", "0.72"), "C": ("0.44", "0.46"), "D": ("0.69", "0.71")}
    rows = [market(f"{series}-{k}", series_ticker=series) for k in [*probs, "NONE"]]
    rows += [quote(f"{series}-{k}", now - timedelta(minutes=5), b, a) for k, (b, a) in probs.items()]
    await write(engine, *rows)
    base: dict[str, str | int] = {"series": series, "sort": "implied_probability", "limit": 2}
    up = await pages(client, base | {"order": "asc"})
    assert [i["ticker"].rsplit("-", 1)[1] for i in up] == ["A", "C", "D", "B", "NONE"]  # type: ignore[union-attr]
    assert [i["implied_probability"] for i in up] == ["0.2100", "0.4500", "0.7000", "0.7100", None]
    down = await pages(client, base | {"order": "desc"})
    assert [i["ticker"].rsplit("-", 1)[1] for i in down] == ["B", "D", "C", "A", "NONE"]  # type: ignore[union-attr]


async def test_change_over_24_hours_is_from_the_price_a_day_ago_or_the_first_one(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    series = ticker("KXCHG")
    now = datetime.now(UTC)
    up, down, young, flat, unpriced = (f"{series}-{k}" for k in ("UP", "DOWN", "YOUNG", "FLAT", "NONE"))
    await write(
        engine,
        *(market(t, series_ticker=series) for t in (up, down, young, flat, unpriced)),
        quote(up, now - timedelta(hours=30), "0.09", "0.11"),  # older than the day-old price: not the base
        quote(up, now - timedelta(hours=25), "0.39", "0.41"),  # the price a day ago: 0.40
        quote(up, now - timedelta(hours=2), "0.49", "0.51"),
        quote(up, now - timedelta(minutes=1), "0.59", "0.61"),  # now: 0.60, +0.20
        quote(down, now - timedelta(hours=26), "0.69", "0.71"),
        quote(down, now - timedelta(minutes=2), "0.49", "0.51"),  # −0.20
        quote(young, now - timedelta(hours=1), "0.29", "0.31"),  # recorded an hour: since its first price
        quote(young, now - timedelta(minutes=3), "0.34", "0.36"),  # +0.05
        quote(flat, now - timedelta(hours=40), "0.50", "0.52"),
        quote(flat, now - timedelta(minutes=4), "0.50", "0.52"),  # 0
    )
    base: dict[str, str | int] = {"series": series, "sort": "change_24h", "limit": 2}
    desc = await pages(client, base | {"order": "desc"})
    assert [i["ticker"] for i in desc] == [up, young, flat, down, unpriced]
    assert [i["change_24h"] for i in desc] == ["0.2000", "0.0500", "0.0000", "-0.2000", None]
    asc = await pages(client, base | {"order": "asc"})
    assert [i["ticker"] for i in asc] == [down, flat, young, up, unpriced]
    # Every sort reports the change, not only this one.
    by_ticker = {i["ticker"]: i["change_24h"] for i in await pages(client, {"series": series, "limit": 10})}
    assert by_ticker == {up: "0.2000", down: "-0.2000", young: "0.0500", flat: "0.0000", unpriced: None}
