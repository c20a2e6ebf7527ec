"""The seed's API contract, tested as the seed writes it (issue 12 §6), beside the richer forms.

- ``BacktestRequest``: ``{"strategy": "fade_overreaction", "market_filter": "politics", "start_date":
  "2026-10-01", "end_date": "2026-10-31"}`` — a category word, whole days (the end day included);
- ``MarketResponse``: ``ticker, title, yes_price, no_price, implied_probability, volume, status, last_updated``
  in the markets list and the detail; ``GET /api/v1/markets?status=active`` as in the seed's request flow;
- error bodies carry the seed's ``error`` (the message) beside the RFC 9457 members, ``path`` and ``method``;
- the order book carries the seed frontend's ``yes_bids`` / ``yes_asks`` as ``[price, size]`` pairs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.kalshi.domain import PriceLevel
from kalshi_analytics.recorder.rows import OrderbookRow, SnapshotRow
from tests.fixtures.app import PROBLEM_KEYS, assert_problem, market, ticker, write

SEED_BACKTEST = {
    "strategy": "fade_overreaction",
    "market_filter": "politics",
    "start_date": "2026-10-01",
    "end_date": "2026-10-31",
}
MARKET_RESPONSE = {
    "ticker",
    "title",
    "yes_price",
    "no_price",
    "implied_probability",
    "volume",
    "status",
    "last_updated",
}
OCT = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


async def wait_finished(client: httpx.AsyncClient, url: str, seconds: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("done", "failed"):
            return dict(r.json())
        assert asyncio.get_running_loop().time() < deadline, r.json()
        await asyncio.sleep(0.05)


async def test_the_seeds_backtest_request_runs_as_written(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker("KXSEEDPOL")
    quotes = [(D("0.40"), D("0.42")), (D("0.60"), D("0.62")), (D("0.41"), D("0.43"))]
    rows = [
        SnapshotRow(ticker=t, ts=OCT + timedelta(minutes=i), source="poll", received_at=OCT, yes_bid=b, yes_ask=a)
        for i, (b, a) in enumerate(quotes)
    ]
    # Categories are stored as the exchange writes them ("Politics"); the seed's word is lower case.
    await write(engine, market(t, category="Politics", status="finalized", result="no"), *rows)

    r = await client.post("/api/v1/backtests", json=SEED_BACKTEST)
    assert r.status_code == 202, r.text
    res = await wait_finished(client, r.headers["location"])
    assert res["status"] == "done", res["error"]
    assert res["strategy"]["name"] == "fade_overreaction"
    assert res["market_filter"]["categories"] == ["politics"]
    # Whole days in UTC, the end day included.
    assert res["window"] == {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}
    assert res["snapshots_processed"] >= len(rows)


async def test_the_seeds_backtest_request_refuses_an_end_before_its_start(client: httpx.AsyncClient) -> None:
    for end_date in ("2026-09-30", "2026-10-01"):
        p = assert_problem(await client.post("/api/v1/backtests", json=SEED_BACKTEST | {"end_date": end_date}), 422)
        assert [e["field"] for e in p["errors"]] == ["body.end_date"], p
    p = assert_problem(
        await client.post("/api/v1/backtests", json=SEED_BACKTEST | {"start_date": "2026-10-01T12:00"}), 422
    )
    assert p["errors"][0]["field"] == "body.start_date", p
    p = assert_problem(await client.post("/api/v1/backtests", json=SEED_BACKTEST | {"start": "2026-10-01T00:00Z"}), 422)
    assert p["errors"][0]["field"] == "body.start_date", p  # one form per side: start or start_date
    both_missing = {k: v for k, v in SEED_BACKTEST.items() if k not in ("start_date", "end_date")}
    p = assert_problem(await client.post("/api/v1/backtests", json=both_missing), 422)
    assert {e["field"] for e in p["errors"]} == {"body.start", "body.end"}, p
    p = assert_problem(await client.post("/api/v1/backtests", json=SEED_BACKTEST | {"market_filter": "a\u0000b"}), 422)
    assert p["errors"][0]["field"].startswith("body.market_filter"), p


async def test_market_response_fields_in_the_list_and_the_detail(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    series = ticker("KXSEEDMKT")
    t = ticker(series)
    snap = SnapshotRow(
        ticker=t,
        ts=OCT,
        source="poll",
        received_at=OCT,
        yes_bid=D("0.40"),
        yes_ask=D("0.44"),
        no_bid=D("0.56"),
        no_ask=D("0.60"),
        volume=D(100),
    )
    await write(engine, market(t, series_ticker=series, volume=D(100)), snap)

    detail = (await client.get(f"/api/v1/markets/{t}")).json()
    (item,) = (await client.get("/api/v1/markets", params={"series": series, "status": "active"})).json()["items"]
    for body in (detail, item):
        assert body.keys() >= MARKET_RESPONSE
        assert (body["ticker"], body["title"], body["status"]) == (t, f"Will {t} happen?", "active")
        assert (body["yes_price"], body["no_price"]) == ("0.4000", "0.5600")  # the best bids
        assert body["implied_probability"] == "0.4200"
        assert D(body["volume"]) == 100
        assert body["last_updated"] == "2026-10-15T12:00:00Z"


async def test_error_bodies_carry_the_seeds_error_member(client: httpx.AsyncClient) -> None:
    for r in (
        await client.get("/api/v1/markets/NOPE-SEED"),
        await client.get("/api/v1/markets", params={"limit": 0}),
        await client.get("/api/v1/nope"),
        await client.put("/api/v1/markets"),
    ):
        body = r.json()
        assert body.keys() >= PROBLEM_KEYS | {"error"}, body
        assert isinstance(body["error"], str)
        assert body["error"] == body["detail"]
        assert (body["path"], body["method"]) == (r.request.url.path, r.request.method)


async def test_order_book_carries_yes_bids_and_yes_asks_pairs(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    lv = PriceLevel
    yes = (lv(D("0.38"), D(5)), lv(D("0.40"), D(10)))  # ascending, as Kalshi sends
    no = (lv(D("0.55"), D(7)), lv(D("0.58"), D(3)))
    await write(
        engine,
        market(t),
        OrderbookRow(ticker=t, ts=OCT, received_at=OCT, source="websocket", sequence=1, yes=yes, no=no),
    )
    b = (await client.get(f"/api/v1/markets/{t}/orderbook")).json()
    assert b["yes_bids"] == [["0.4000", "10"], ["0.3800", "5"]]
    # YES ask = 1 − NO bid, best (lowest) first; its size is the NO bid's.
    assert b["yes_asks"] == [["0.4200", "3"], ["0.4500", "7"]]
    assert [lv["price"] for lv in b["yes"]] == ["0.4000", "0.3800"]  # today's levels stay
    assert [lv["price"] for lv in b["no"]] == ["0.5800", "0.5500"]


async def test_the_seeds_days_at_the_edges_of_the_calendar_are_422(client: httpx.AsyncClient) -> None:
    for extra, field in (
        ({"end_date": "9999-12-31"}, "body.end_date"),
        ({"start_date": "0001-01-01"}, "body.start_date"),
        ({"start_date": "9999-12-30", "end_date": "9999-12-31"}, "body.end_date"),
    ):
        p = assert_problem(await client.post("/api/v1/backtests", json=SEED_BACKTEST | extra), 422)
        assert p["errors"][0]["field"] == field, (extra, p)
