"""Backtests and strategies routes against real PostgreSQL: create → 202 → the app's worker runs it → results.

Markets and snapshots are written through the recorder's Sink; every backtest filters on its own tickers, so
other tests' data in the shared database never enters a run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.service import BacktestRequest, compute_backtest, save_outcome
from kalshi_analytics.recorder.rows import SnapshotRow
from tests.fixtures.app import assert_problem, market, serve, ticker, write

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
START, END = "2026-03-01T00:00:00Z", "2026-03-05T00:00:00Z"
BUILTINS = {"buy_and_hold", "fade_overreaction", "momentum", "mean_reversion", "favourite_longshot"}


async def settled_yes_market(engine: AsyncEngine) -> str:
    """One market settled YES; asks 0.42 then 0.50 (buy-and-hold enters at the first ask, 0.42)."""
    t = ticker("KXBTAPI")
    rows = [
        SnapshotRow(ticker=t, ts=T0 + timedelta(minutes=i), source="poll", received_at=T0, yes_bid=b, yes_ask=a)
        for i, (b, a) in enumerate([(D("0.40"), D("0.42")), (D("0.48"), D("0.50"))])
    ]
    await write(engine, market(t, status="finalized", result="yes", settlement_value=D(1)), *rows)
    return t


def body(t: str, **kw: Any) -> dict[str, Any]:
    return {
        "strategy": "buy_and_hold",
        "params": {"size": 10},
        "start": START,
        "end": END,
        "market_filter": {"tickers": [t]},
    } | kw


async def wait_done(client: httpx.AsyncClient, url: str, seconds: float = 30) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("done", "failed"):
            return dict(r.json())
        assert asyncio.get_running_loop().time() < deadline, r.json()
        await asyncio.sleep(0.05)


async def test_create_runs_in_the_background_and_pays_to_the_cent(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    t = await settled_yes_market(engine)
    r = await client.post("/api/v1/backtests", json=body(t))
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["status"] == "queued"
    bid = created["id"]
    assert r.headers["location"] == f"/api/v1/backtests/{bid}" == created["links"]["self"]
    assert created["links"]["executions"] == f"/api/v1/backtests/{bid}/executions"

    res = await wait_done(client, r.headers["location"])
    assert res["status"] == "done", res["error"]
    assert res["strategy"] == {"name": "buy_and_hold", "version": "1"}
    assert res["params"] == {"side": "yes", "size": 10.0}
    assert res["window"]["start"].startswith("2026-03-01T00:00:00")
    assert res["market_filter"]["tickers"] == [t]
    assert res["config"]["initial_capital"] == "10000"
    assert (res["config"]["fill_latency_seconds"], res["config"]["walk_book"]) == (0.0, True)
    assert res["metrics"]["fill_model"]["name"] == "displayed_liquidity"
    assert res["metrics"]["annualisation"]["interval_seconds"] == 60.0
    assert res["error"] is None
    # 10 YES at 0.42, fee ceil(0.07 × 10 × 0.42 × 0.58 = 0.17052) = 0.18, settled at 1: 10 × 0.58 − 0.18
    assert res["num_trades"] == 1
    assert D(res["total_pnl"]) == D("5.62")
    assert D(res["fees_paid"]) == D("0.18")
    assert res["snapshots_processed"] == 2
    assert (res["metrics"]["num_trades"], res["metrics"]["win_rate"]) == (1, 1.0)
    assert res["feed_gaps"] == {"count": 0, "gaps": []}  # the recorder reported none for this market

    ex = await client.get(created["links"]["executions"])
    assert ex.status_code == 200, ex.text
    (e,) = ex.json()["items"]
    assert (e["ticker"], e["side"], D(e["size"]), D(e["entry_price"])) == (t, "yes", D(10), D("0.42"))
    assert (D(e["fees"]), D(e["pnl"]), e["exit_reason"]) == (D("0.18"), D("5.62"), "settlement")
    assert e["entry_price"] == "0.4200"  # money as strings
    assert ex.json()["next_cursor"] is None

    eq = (await client.get(created["links"]["equity"])).json()
    assert eq["status"] == "done"
    assert len(eq["ts"]) == len(eq["equity"]) >= 1
    assert (eq["ts"][0], eq["equity"][0]) == (res["window"]["start"], 10_000.0)  # from the window's start
    assert eq["equity"][-1] == 10_005.62

    # The list carries the key metrics of a finished run (from its metrics), as the dashboard's table shows them.
    page = (await client.get("/api/v1/backtests", params={"strategy": "buy_and_hold", "limit": 1000})).json()
    (row,) = [i for i in page["items"] if i["id"] == bid]
    assert (D(row["total_pnl"]), row["num_trades"]) == (D("5.62"), 1)
    assert (row["sharpe"], row["max_drawdown"]) == (res["metrics"]["sharpe"], res["metrics"]["max_drawdown"])
    assert row["max_drawdown"] is not None


async def test_invalid_requests_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    t = "KXBTAPI-NONE"
    p = assert_problem(await client.post("/api/v1/backtests", json=body(t, strategy="nope")), 422)
    assert p["errors"][0]["field"] == "body.strategy"
    assert "nope" in p["errors"][0]["message"]

    p = assert_problem(await client.post("/api/v1/backtests", json=body(t, params={"size": -1})), 422)
    assert p["errors"][0]["field"] == "body.params.size"
    p = assert_problem(await client.post("/api/v1/backtests", json=body(t, params={"nope": 1})), 422)
    assert p["errors"][0]["field"] == "body.params.nope"

    p = assert_problem(await client.post("/api/v1/backtests", json=body(t, start=END, end=START)), 422)
    assert p["errors"][0]["field"] == "body.end"

    p = assert_problem(await client.post("/api/v1/backtests", json=body(t, initial_capital="-5")), 422)
    assert p["errors"][0]["field"] == "body.initial_capital"
    p = assert_problem(await client.post("/api/v1/backtests", json={"strategy": "momentum"}), 422)
    assert {e["field"] for e in p["errors"]} == {"body.start", "body.end"}


async def test_windows_and_filters_are_checked_by_the_service_rules_naming_the_field(client: httpx.AsyncClient) -> None:
    # The window of the CLI report: the same rules answer here and there (tests/backtests/test_cli.py).
    for start, end, field, message in (
        ("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "body.start", "start must lie between 2000 and 2100"),
        ("2026-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "body.end", "end must lie between 2000 and 2100"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "body.end", "end (2026-01-01T00:00:00+00:00) must be after"),
    ):
        p = assert_problem(await client.post("/api/v1/backtests", json=body("X", start=start, end=end)), 422)
        assert [(e["field"], e["message"][: len(message)]) for e in p["errors"]] == [(field, message)], p
    for market_filter, field, message in (
        ({"tickers": [""]}, "body.market_filter.tickers", "a ticker must not be empty"),
        ({"series": ["KX\u0001"]}, "body.market_filter.series", "series 'KX\\x01' contains a control character"),
        ({"events": ["E" * 201]}, "body.market_filter.events", "event 'EEEEEEEEEEEEEEEEEEEE'… is longer than 200"),
        ("a\u0007b", "body.market_filter.categories", "category 'a\\x07b' contains a control character"),
    ):
        p = assert_problem(await client.post("/api/v1/backtests", json=body("X", market_filter=market_filter)), 422)
        assert [(e["field"], e["message"][: len(message)]) for e in p["errors"]] == [(field, message)], p
        assert p["detail"].startswith(f"invalid request: {field}: "), p


async def count_results(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM backtest_results"))).scalar_one())


async def test_a_backtest_of_no_data_is_a_422_no_data_and_nothing_is_queued(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    t = await settled_yes_market(engine)
    before = await count_results(engine)
    r = await client.post("/api/v1/backtests", json=body(t, market_filter={"tickers": [t, "KXBTAPI-NOPE"]}))
    p = assert_problem(r, 422)
    assert (p["type"], p["title"]) == ("https://kalshi-analytics.dev/problems/no-data", "No data")
    assert p["errors"] == [{"field": "body.market_filter.tickers", "message": "no recorded market 'KXBTAPI-NOPE'"}]
    r = await client.post("/api/v1/backtests", json=body(t, market_filter={"series": ["KXAPI"], "events": ["NOPE-EV"]}))
    assert assert_problem(r, 422)["errors"][0]["field"] == "body.market_filter.events"
    await write(engine, market(ticker("KXBTAPISP"), category="Sports"))
    r = await client.post("/api/v1/backtests", json=body(t, market_filter={"tickers": [t], "categories": ["sports"]}))
    p = assert_problem(r, 422)  # both exist, but no market is both
    assert p["errors"] == [
        {"field": "body.market_filter", "message": "no recorded market matches all of the filter's conditions"}
    ]

    # A known market, a window before its snapshots: no field is at fault, the detail says where the data is.
    r = await client.post("/api/v1/backtests", json=body(t, start="2026-02-01T00:00:00Z", end="2026-03-01"))
    p = assert_problem(r, 422)
    assert p["type"].endswith("/no-data")
    assert p["detail"] == (
        "no snapshots between 2026-02-01T00:00:00Z and 2026-03-01T00:00:00Z in the 1 selected market; "
        "it holds snapshots from 2026-03-02T15:00:00Z to 2026-03-02T15:01:00Z"
    )
    assert "errors" not in p
    p = assert_problem(
        await client.post(
            "/api/v1/backtests", json=body(t, start=None, end=None, start_date="2026-01-01", end_date="2026-01-31")
        ),
        422,
    )
    assert p["type"].endswith("/no-data")
    assert await count_results(engine) == before

    # Asked for: queued and run, done with zero snapshots and a message saying why.
    r = await client.post("/api/v1/backtests", json=body("KXBTAPI-NOPE", keep_empty=True))
    assert r.status_code == 202, r.text
    res = await wait_done(client, r.headers["location"])
    assert (res["status"], res["snapshots_processed"], res["num_trades"]) == ("done", 0, 0)
    assert res["metrics"]["message"] == "no snapshots in the window for the selected markets"
    p = assert_problem(await client.post("/api/v1/backtests", json=body(t, keep_empty="maybe")), 422)
    assert p["errors"][0]["field"] == "body.keep_empty"


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    for suffix in ("", "/executions", "/equity"):
        p = assert_problem(await client.get(f"/api/v1/backtests/{uuid.uuid4()}{suffix}"), 404)
        assert p["path"].startswith("/api/v1/backtests/")
        p = assert_problem(await client.get(f"/api/v1/backtests/not-a-uuid{suffix}"), 422)
        assert p["errors"][0]["field"] == "path.backtest_id"


async def test_list_newest_first_paginated_and_filtered(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(api_backtest_worker=False)  # a read replica: rows stay queued
    t = "KXBTAPI-LIST"
    async with serve(app) as client:
        assert app.state.backtest_worker is None
        ids = []
        for strategy in ("momentum", "fade_overreaction", "momentum"):
            r = await client.post("/api/v1/backtests", json=body(t, strategy=strategy, params={}, keep_empty=True))
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        seen: list[dict[str, Any]] = []
        url = "/api/v1/backtests?limit=1"
        while len(seen) < 3:
            page = (await client.get(url)).json()
            assert len(page["items"]) == 1
            seen += page["items"]
            url = f"/api/v1/backtests?limit=1&cursor={page['next_cursor']}"
        assert [s["id"] for s in seen] == ids[::-1]
        assert seen[0]["status"] == "queued"
        assert seen[0]["links"]["self"] == f"/api/v1/backtests/{ids[2]}"

        page = (await client.get("/api/v1/backtests", params={"strategy": "fade_overreaction", "limit": 1000})).json()
        assert ids[1] in {i["id"] for i in page["items"]}
        assert {i["strategy"]["name"] for i in page["items"]} == {"fade_overreaction"}
        assert not {ids[0], ids[2]} & {i["id"] for i in page["items"]}

        p = assert_problem(await client.get("/api/v1/backtests?cursor=garbage"), 422)
        assert p["errors"][0]["field"] == "query.cursor"
    # leave nothing queued for other tests' workers
    async with serve(app_factory()) as client:
        for i in ids:
            await wait_done(client, f"/api/v1/backtests/{i}")


async def test_strategies_list_and_detail(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/strategies")
    assert r.status_code == 200
    by_name = {s["name"]: s for s in r.json()}
    assert set(by_name) >= BUILTINS
    bh = by_name["buy_and_hold"]
    assert bh["version"] == "1"
    assert bh["description"]
    assert bh["params_schema"]["properties"]["size"]["type"] == "number"
    assert all(s["params_schema"]["type"] == "object" for s in by_name.values())

    one = await client.get("/api/v1/strategies/buy_and_hold")
    assert one.status_code == 200
    assert one.json() == bh
    assert_problem(await client.get("/api/v1/strategies/nope"), 404)
    assert_problem(await client.get("/api/v1/strategies/buy_and_hold?version=99"), 404)


async def test_create_counts_against_the_expensive_limit(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(api_rate_limit_enabled=True, api_rate_expensive="1/minute", api_backtest_worker=False)
    async with serve(app) as client:
        bad = body("KXBTAPI-RL", strategy="nope")
        assert (await client.post("/api/v1/backtests", json=bad)).status_code == 422
        r = await client.post("/api/v1/backtests", json=bad)
        assert_problem(r, 429)
        assert "Retry-After" in r.headers
        assert (await client.get("/api/v1/strategies")).status_code == 200


async def test_openapi_names_the_new_operations(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    ops = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    assert {
        "createBacktest",
        "listBacktests",
        "getBacktest",
        "listBacktestExecutions",
        "getBacktestEquity",
        "listStrategies",
        "getStrategy",
    } <= ops.keys()
    assert "202" in ops["createBacktest"]["responses"]


async def test_values_postgres_cannot_store_are_422(client: httpx.AsyncClient) -> None:
    p = assert_problem(
        await client.post("/api/v1/backtests", json=body("KXBTAPI-\u0000", strategy="momentum", params={})), 422
    )
    assert p["errors"][0]["field"] == "body.market_filter.tickers"
    p = assert_problem(await client.post("/api/v1/backtests", json=body("X", start="0001-01-01T00:00:00+14:00")), 422)
    assert p["errors"][0]["field"] == "body.start"
    p = assert_problem(await client.post("/api/v1/backtests", json=body("X", initial_capital="1e1000")), 422)
    assert p["errors"][0]["field"] == "body.initial_capital"


async def test_delete_removes_a_backtest_and_its_executions(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = await settled_yes_market(engine)
    r = await client.post("/api/v1/backtests", json=body(t))
    url = r.headers["location"]
    assert (await wait_done(client, url))["num_trades"] == 1

    r = await client.delete(url)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(await client.get(url), 404)
    assert_problem(await client.get(f"{url}/executions"), 404)
    async with engine.connect() as conn:
        left = await conn.execute(
            text("SELECT count(*) FROM backtest_executions WHERE backtest_id = :id"), {"id": url.rsplit("/", 1)[1]}
        )
        assert left.scalar_one() == 0
    assert_problem(await client.delete(url), 404)  # gone
    assert_problem(await client.delete(f"/api/v1/backtests/{uuid.uuid4()}"), 404)
    p = assert_problem(await client.delete("/api/v1/backtests/not-a-uuid"), 422)
    assert p["errors"][0]["field"] == "path.backtest_id"


async def test_delete_of_a_queued_or_running_backtest_cancels_it(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    t = await settled_yes_market(engine)
    async with serve(app_factory(api_backtest_worker=False)) as client:
        queued = (await client.post("/api/v1/backtests", json=body(t))).headers["location"]
        running = (await client.post("/api/v1/backtests", json=body(t))).headers["location"]
        running_id = uuid.UUID(running.rsplit("/", 1)[1])
        # A worker elsewhere has claimed it (as execute_queued does) and is simulating.
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE backtest_results SET status = 'running', started_at = now() WHERE id = :id"),
                {"id": running_id},
            )
        assert (await client.get(running)).json()["status"] == "running"
        for url in (queued, running):
            assert (await client.delete(url)).status_code == 204
            assert_problem(await client.get(url), 404)
    # The worker finishing the deleted run stores nothing: no result, no executions, no error.
    req = BacktestRequest.model_validate(body(t))
    out = await compute_backtest(engine, req)
    assert out.sim.executions
    await save_outcome(engine, running_id, out)
    async with engine.connect() as conn:
        for table, column in (("backtest_results", "id"), ("backtest_executions", "backtest_id")):
            n = await conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :id"), {"id": running_id})
            assert n.scalar_one() == 0, table
