"""The crafted inputs of issue 12, each an explicit test: a 4xx problem body naming the field, never a 500.

Cursors are forged the way a client could: base64url of a JSON array of the listing's kind and values
(:func:`~kalshi_analytics.web.cursors.encode_cursor` is the API's own encoder; cursors are not signed, so every
value must be checked before it reaches a query).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import SnapshotRow, TradeRow
from kalshi_analytics.web.cursors import encode_cursor
from tests.fixtures.app import assert_problem, market, serve, ticker, write

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


def forged(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def assert_cursor_refused(r: httpx.Response) -> None:
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "query.cursor", body


@pytest.fixture
async def traded(engine: AsyncEngine) -> str:
    t = ticker()
    await write(
        engine,
        market(t),
        SnapshotRow(ticker=t, ts=T0, source="poll", received_at=T0, yes_bid=D("0.4"), yes_ask=D("0.42")),
        TradeRow(
            trade_id=f"tr-{t}", ticker=t, ts=T0, received_at=T0, yes_price=D("0.4"), no_price=D("0.6"), count=D(1)
        ),
    )
    return t


async def test_markets_volume_cursor_with_text_for_a_number(client: httpx.AsyncClient) -> None:
    def refused(sort: str, *values: Any) -> Any:
        return client.get("/api/v1/markets", params={"sort": sort, "cursor": forged(*values)})

    assert_cursor_refused(await refused("volume", "markets:volume:asc", "abc", "x"))
    for key in ("1e999999", "NaN", "Infinity", "-Infinity", 5, None, ["1"]):
        assert_cursor_refused(await refused("volume", "markets:volume:asc", key, "x"))
    assert_cursor_refused(await refused("close_time", "markets:close_time:asc", "not a time", "x"))
    assert_cursor_refused(await refused("close_time", "markets:close_time:asc", EDGE_TIMES[0], "x"))
    assert_cursor_refused(await refused("ticker", "markets:ticker:asc", "A\x00B", "A\x00B"))
    assert_cursor_refused(await refused("ticker", "markets:ticker:asc", "A", 7))


@pytest.mark.parametrize("bad", [*EDGE_TIMES, "nul"])
async def test_trades_and_history_cursors_at_the_edges_of_time_or_with_nul(
    client: httpx.AsyncClient, traded: str, bad: str
) -> None:
    ts, ident = (T0.isoformat(), "a\x00b") if bad == "nul" else (bad, "x")
    for kind, path in (("trades", "trades"), ("snapshots", "history")):
        r = await client.get(f"/api/v1/markets/{traded}/{path}", params={"cursor": forged(kind, ts, ident)})
        assert_cursor_refused(r)


@pytest.mark.parametrize("bad", [*EDGE_TIMES, "nul"])
async def test_backtests_cursor_at_the_edges_of_time_or_with_nul(client: httpx.AsyncClient, bad: str) -> None:
    ts, ident = (T0.isoformat(), "a\x00b") if bad == "nul" else (bad, "00000000-0000-0000-0000-000000000000")
    assert_cursor_refused(await client.get("/api/v1/backtests", params={"cursor": forged("backtests", ts, ident)}))


async def test_executions_cursor_with_an_id_beyond_bigint(app_factory: Callable[..., FastAPI]) -> None:
    async with serve(app_factory(api_backtest_worker=False)) as client:
        body = {"strategy": "buy_and_hold", "start": "2026-03-01", "end": "2026-03-02"}
        r = await client.post(
            "/api/v1/backtests", json=body | {"market_filter": {"tickers": ["KXCRAFT-NONE"]}, "keep_empty": True}
        )
        assert r.status_code == 202, r.text
        url = r.json()["links"]["executions"]
        for last_id in (10**30, -(10**30), 2**63, 1.5, "1", None, True):
            cursor = forged("executions", T0.isoformat(), last_id)
            assert_cursor_refused(await client.get(url, params={"cursor": cursor}))
        for ts in EDGE_TIMES:
            assert_cursor_refused(await client.get(url, params={"cursor": forged("executions", ts, 1)}))
        ok = await client.get(url, params={"cursor": encode_cursor("executions", T0.isoformat(), 2**63 - 1)})
        assert ok.status_code == 200, ok.text


async def test_cursors_that_are_not_json_arrays(client: httpx.AsyncClient) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 1400).decode().rstrip("=")
    for cursor in ("!!!", "e30", forged("trades"), deep, base64.urlsafe_b64encode(b"\xff\xfe").decode()):
        assert_cursor_refused(await client.get("/api/v1/backtests", params={"cursor": cursor}))


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
async def test_backtest_params_with_a_non_finite_number(client: httpx.AsyncClient, literal: str) -> None:
    raw = (
        '{"strategy": "buy_and_hold", "start": "2026-03-01", "end": "2026-03-02", '
        f'"market_filter": {{"tickers": ["KXCRAFT-NONE"]}}, "params": {{"size": {literal}}}}}'
    )
    r = await client.post("/api/v1/backtests", content=raw, headers={"content-type": "application/json"})
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "body.params.size", body


async def test_non_finite_numbers_anywhere_in_a_body_name_their_place(client: httpx.AsyncClient) -> None:
    raw = '{"strategy": "buy_and_hold", "start": "2026-03-01", "end": "2026-03-02", "initial_capital": NaN}'
    r = await client.post("/api/v1/backtests", content=raw, headers={"content-type": "application/json"})
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "body.initial_capital", body


async def test_non_finite_numbers_written_as_text_are_refused_too(client: httpx.AsyncClient) -> None:
    base = {"strategy": "buy_and_hold", "start": "2026-03-01", "end": "2026-03-02"}
    for extra, field in (
        ({"params": {"size": "Infinity"}}, "body.params.size"),
        ({"params": {"size": "nan"}}, "body.params.size"),
        ({"initial_capital": "NaN"}, "body.initial_capital"),
        ({"max_position": "Infinity"}, "body.max_position"),
    ):
        body = assert_problem(await client.post("/api/v1/backtests", json=base | extra), 422)
        assert body["errors"][0]["field"] == field, body
