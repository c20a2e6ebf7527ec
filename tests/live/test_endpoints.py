"""The paper trading API on real PostgreSQL: create (201) → list → detail → stop (409 the second time), every bad
create a 422 naming its field with nothing stored, 404s, and a session a live runner traded in-process read back
through fills, positions, equity, events, performance, the divergence report and the live stream."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import create_app
from kalshi_analytics.live.runner import LiveRunner
from kalshi_analytics.recorder.rows import SnapshotRow
from tests.conftest import wait_until
from tests.fixtures.app import assert_problem, make_settings, market, serve, ticker, write
from tests.markets.conftest import running_api, sse

BASE = "/api/v1/paper-sessions"
OPERATIONS = {
    "createPaperSession",
    "listPaperSessions",
    "getPaperSession",
    "stopPaperSession",
    "listPaperSessionFills",
    "listPaperSessionPositions",
    "getPaperSessionEquity",
    "listPaperSessionEvents",
    "comparePaperSession",
    "getStrategyPerformance",
}


def body(t: str, **kw: Any) -> dict[str, Any]:
    return {"strategy": "buy_and_hold", "params": {"size": 5}, "market_filter": {"tickers": [t]}} | kw


async def recorded_market(engine: AsyncEngine, prefix: str = "KXPAPI") -> str:
    """An open market with one snapshot a minute ago."""
    t = ticker(prefix)
    at = datetime.now(UTC) - timedelta(minutes=1)
    await write(engine, market(t), SnapshotRow(t, at, "poll", at, yes_bid=D("0.40"), yes_ask=D("0.44")))
    return t


async def stored(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as c:
        return int(
            (await c.execute(text("SELECT count(*) FROM paper_sessions WHERE name = :n"), {"n": name})).scalar_one()
        )


async def test_create_list_detail_stop_and_stop_again_is_409(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = await recorded_market(engine)
    name = f"api-{uuid.uuid4().hex[:8]}"
    r = await client.post(BASE, json=body(t, name=name, initial_capital="500", equity_interval_seconds=5))
    assert r.status_code == 201, r.text
    s = r.json()
    sid = s["id"]
    assert r.headers["location"] == f"{BASE}/{sid}" == s["links"]["self"]
    assert s["links"]["fills"] == f"{BASE}/{sid}/fills"
    assert s["links"]["compare"] == f"{BASE}/{sid}/compare"
    assert (s["name"], s["strategy"], s["strategy_version"], s["status"]) == (name, "buy_and_hold", "1", "running")
    assert s["params"] == {"side": "yes", "size": 5.0}  # validated, defaults filled in
    assert s["tickers"] == [t]
    assert s["market_filter"]["tickers"] == [t]
    assert s["config"]["equity_interval_seconds"] == 5.0
    assert s["restart_policy"] == "resume"
    # Money as exact decimal strings; nothing traded yet.
    assert (D(s["initial_capital"]), D(s["cash"]), D(s["equity"])) == (D(500), D(500), D(500))
    assert D(s["total_pnl"]) == D(s["realised_pnl"]) == D(s["unrealised_pnl"]) == D(s["fees_paid"]) == 0
    assert (s["num_fills"], s["skipped"], s["stopped_at"], s["processed_until"]) == (0, {}, None, None)
    assert datetime.fromisoformat(s["started_at"]) > datetime.now(UTC) - timedelta(minutes=1)  # from now on

    got = await client.get(f"{BASE}/{sid}")
    assert got.status_code == 200
    assert got.json() == s

    listed = await client.get(BASE, params={"strategy": "buy_and_hold", "status": "running", "limit": 1000})
    assert listed.status_code == 200
    assert sid in [i["id"] for i in listed.json()["items"]]
    stopped_list = (await client.get(BASE, params={"status": "stopped", "limit": 1000})).json()["items"]
    assert sid not in [i["id"] for i in stopped_list]
    momentum = (await client.get(BASE, params={"strategy": "momentum", "limit": 1000})).json()["items"]
    assert sid not in [i["id"] for i in momentum]
    newest = (await client.get(BASE, params={"limit": 1})).json()["items"]
    assert len(newest) == 1

    stop = await client.post(f"{BASE}/{sid}/stop")
    assert stop.status_code == 200, stop.text
    v = stop.json()
    assert (v["id"], v["status"], v["stop_reason"]) == (sid, "stopped", "stopped by request")
    assert v["stopped_at"] is not None
    again = assert_problem(await client.post(f"{BASE}/{sid}/stop"), 409)
    assert "already stopped" in again["detail"]
    assert (await client.get(f"{BASE}/{sid}")).json()["status"] == "stopped"  # unchanged by the refused stop
    stopped_list = (await client.get(BASE, params={"status": "stopped", "limit": 1000})).json()["items"]
    assert sid in [i["id"] for i in stopped_list]

    # A session no runner advanced: nothing traded, its start and stop recorded, and an empty divergence report.
    fills = (await client.get(f"{BASE}/{sid}/fills")).json()
    assert fills == {"session_id": sid, "items": [], "next_after": None}
    assert (await client.get(f"{BASE}/{sid}/positions")).json() == []
    assert (await client.get(f"{BASE}/{sid}/equity")).json() == []
    events = (await client.get(f"{BASE}/{sid}/events")).json()
    assert [e["kind"] for e in events] == ["started", "stopped"]
    assert events[0]["details"] == {"tickers": 1, "initial_capital": "500"}
    report = await client.get(f"{BASE}/{sid}/compare")
    assert report.status_code == 200, report.text
    rep = report.json()
    assert (rep["session_id"], rep["differences"], rep["unexplained"]) == (sid, [], 0)
    assert (rep["paper_fills"], rep["backtest_fills"], D(rep["paper_pnl"]), D(rep["backtest_pnl"])) == (0, 0, 0, 0)


NAN_BODY = '{"strategy": "buy_and_hold", "params": {"size": NaN}, "market_filter": {"tickers": ["%s"]}, "name": "%s"}'
INF_BODY = (
    '{"strategy": "buy_and_hold", "initial_capital": Infinity, "market_filter": {"tickers": ["%s"]}, "name": "%s"}'
)

BAD_CREATES: list[tuple[str, dict[str, Any] | str, str]] = [
    ("unknown strategy", {"strategy": "no_such_strategy"}, "body.strategy"),
    ("unknown version", {"strategy_version": "99"}, "body.strategy_version"),
    ("bad parameter", {"params": {"size": -1}}, "body.params.size"),
    ("parameter of the wrong type", {"params": {"size": "lots"}}, "body.params.size"),
    ("unknown parameter", {"params": {"nope": 1}}, "body.params.nope"),
    ("no selection", {"market_filter": {}}, "body.market_filter"),
    ("empty lists", {"market_filter": {"tickers": [], "series": []}}, "body.market_filter"),
    ("unknown market", {"market_filter": {"tickers": ["KXPAPI-NO-SUCH-MARKET"]}}, "body.market_filter"),
    ("blank ticker", {"market_filter": {"tickers": [" "]}}, "body.market_filter.tickers"),
    ("unknown filter key", {"market_filter": {"colour": ["red"]}}, "body.market_filter"),
    ("capital zero", {"initial_capital": "0"}, "body.initial_capital"),
    ("capital negative", {"initial_capital": -5}, "body.initial_capital"),
    ("capital NaN text", {"initial_capital": "NaN"}, "body.initial_capital"),
    ("capital Infinity text", {"initial_capital": "Infinity"}, "body.initial_capital"),
    ("capital too large", {"initial_capital": "1e400"}, "body.initial_capital"),
    ("capital not a number", {"initial_capital": "lots"}, "body.initial_capital"),
    ("capital rounding to 0", {"initial_capital": "0.00001"}, "body.initial_capital"),
    ("capital of a tiny exponent", {"initial_capital": "1e-100000"}, "body.initial_capital"),
    ("capital finer than 0.0001", {"initial_capital": "100.000001"}, "body.initial_capital"),
    ("max position zero", {"max_position": 0}, "body.max_position"),
    ("negative latency", {"fill_latency_seconds": -1}, "body.fill_latency_seconds"),
    ("restart policy", {"restart_policy": "forget"}, "body.restart_policy"),
    ("unknown field", {"colour": "red"}, "body.colour"),
    ("NUL in the name", {"name": "a\x00b"}, "body.name"),
    ("NaN parameter", NAN_BODY, "body.params.size"),
    ("Infinity capital", INF_BODY, "body.initial_capital"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_CREATES, ids=[c[0] for c in BAD_CREATES])
async def test_bad_creates_are_422_naming_the_field_and_store_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, case: str, change: dict[str, Any] | str, field: str
) -> None:
    t = await recorded_market(engine)
    name = f"refused-{uuid.uuid4().hex[:8]}"
    if isinstance(change, str):
        r = await client.post(BASE, content=change % (t, name), headers={"content-type": "application/json"})
    else:
        r = await client.post(BASE, json=body(t, name=name) | change)
    p = assert_problem(r, 422)
    assert any(e["field"] == field or e["field"].startswith(f"{field}.") for e in p["errors"]), p
    assert await stored(engine, name) == 0, case


async def test_category_word_and_unknown_ids(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    # The seed's form (README's example): one category word, any case; a word no market carries is a 422.
    word = f"PaperApi{uuid.uuid4().hex[:8]}"
    t1, t2 = ticker("KXPAPICAT"), ticker("KXPAPICAT")
    await write(engine, market(t1, category=word), market(t2, category=word))
    readme = {"strategy": "momentum", "params": {"threshold": 0.03}, "market_filter": word.lower()}
    r = await client.post(BASE, json=readme | {"initial_capital": "1000", "name": "crypto momentum"})
    assert r.status_code == 201, r.text
    assert sorted(r.json()["tickers"]) == sorted([t1, t2])
    assert r.json()["market_filter"]["categories"] == [word.lower()]
    assert (await client.post(f"{BASE}/{r.json()['id']}/stop")).status_code == 200
    p = assert_problem(await client.post(BASE, json=body("X", market_filter="no-such-category-word")), 422)
    assert p["errors"][0]["field"] == "body.market_filter"

    missing = uuid.uuid4()
    for path in ("", "/fills", "/positions", "/equity", "/events", "/compare"):
        p = assert_problem(await client.get(f"{BASE}/{missing}{path}"), 404)
        assert str(missing) in p["detail"]
    assert_problem(await client.post(f"{BASE}/{missing}/stop"), 404)
    for path in ("", "/fills", "/compare"):
        p = assert_problem(await client.get(f"{BASE}/not-a-uuid{path}"), 422)
        assert p["errors"][0]["field"] == "path.session_id"
    assert_problem(await client.post(f"{BASE}/not-a-uuid/stop"), 422)
    for params, field in (
        ({"status": "paused"}, "query.status"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"strategy": "a\x00b"}, "query.strategy"),
    ):
        p = assert_problem(await client.get(BASE, params=params), 422)
        assert p["errors"][0]["field"] == field
    p = assert_problem(await client.get(f"{BASE}/{missing}/fills", params={"after": -1}), 422)
    assert p["errors"][0]["field"] == "query.after"

    # Strategy performance: an unknown name is a path that names nothing, as `GET /strategies/{name}` answers.
    p = assert_problem(await client.get("/api/v1/strategies/no_such_strategy/performance"), 404)
    assert "no_such_strategy" in p["detail"]
    assert (await client.get("/api/v1/strategies/no_such_strategy")).status_code == 404


async def test_openapi_lists_the_paper_operations(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    ops = {op["operationId"]: (path, method) for path, item in spec["paths"].items() for method, op in item.items()}
    assert ops.keys() >= OPERATIONS
    assert ops["createPaperSession"] == (BASE, "post")
    assert ops["stopPaperSession"] == (f"{BASE}/{{session_id}}/stop", "post")
    assert ops["getStrategyPerformance"] == ("/api/v1/strategies/{name}/performance", "get")
    create = spec["paths"][BASE]["post"]
    assert {"201", "409", "422"} - create["responses"].keys() == {"409"}
    assert "409" in spec["paths"][f"{BASE}/{{session_id}}/stop"]["post"]["responses"]
    stream = spec["paths"]["/api/v1/stream"]["get"]["description"]
    for kind in ("paper_fill", "paper_position", "paper_equity", "paper_session"):
        assert f"`{kind}`" in stream


# ------------------------------------------------------------------------------ a session a runner traded
@asynccontextmanager
async def live_runner(engine: AsyncEngine) -> AsyncIterator[LiveRunner]:
    runner = LiveRunner(engine, lock_key=random.randrange(1, 2**62), idle_wait=0.1, refresh_seconds=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield runner
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def quotes(t: str, start: datetime, pairs: list[tuple[str, str]]) -> list[SnapshotRow]:
    return [
        SnapshotRow(t, start + timedelta(seconds=i), "poll", start, yes_bid=D(b), yes_ask=D(a))
        for i, (b, a) in enumerate(pairs)
    ]


async def test_a_traded_session_read_back_over_the_api(
    own_db: tuple[str, AsyncEngine], app_factory: Callable[..., FastAPI]
) -> None:
    url, engine = own_db
    t1, t2 = ticker("KXPAPIRUN"), ticker("KXPAPIRUN")
    await write(engine, market(t1), market(t2))
    app = create_app(make_settings(url, api_stream_heartbeat_seconds=0.3, api_backtest_worker=False), engine=engine)
    kinds = "paper_session,paper_fill,paper_position,paper_equity"
    async with (
        running_api(app) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        sse(client, {"kinds": kinds}) as reader,
    ):
        await reader.until("ready")
        r = await client.post(
            BASE,
            json=body(t1, market_filter={"tickers": [t1, t2]}, initial_capital="100", equity_interval_seconds=1),
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        started = await reader.until("paper_session")
        assert (started.json()["session_id"], started.json()["kind"]) == (sid, "started")
        start = datetime.fromisoformat(r.json()["started_at"]) + timedelta(seconds=1)

        async with live_runner(engine) as runner:
            await asyncio.wait_for(runner.ready.wait(), 30)
            # Recorded after the session started: buy-and-hold buys 5 YES of each at its first ask.
            await write(
                engine,
                *quotes(t1, start, [("0.40", "0.44"), ("0.45", "0.47"), ("0.50", "0.52")]),
                *quotes(t2, start, [("0.20", "0.25"), ("0.18", "0.22")]),
            )
            last = start + timedelta(seconds=2)

            async def caught_up() -> bool:
                v = (await client.get(f"{BASE}/{sid}")).json()
                return v["processed_until"] is not None and datetime.fromisoformat(v["processed_until"]) >= last

            await wait_until(caught_up, "the runner to apply every snapshot", seconds=30, interval=0.1)
            fill_event = await reader.until("paper_fill")
            position_event = await reader.until("paper_position")
            equity_event = await reader.until("paper_equity")

        fills = (await client.get(f"{BASE}/{sid}/fills")).json()
        assert fills["next_after"] is None
        got = sorted((f["ticker"], f["side"], f["action"], D(f["price"]), D(f["count"])) for f in fills["items"])
        assert got == sorted([(t1, "yes", "buy", D("0.44"), D(5)), (t2, "yes", "buy", D("0.25"), D(5))])
        # Fees: ceil(0.07 × 5 × 0.44 × 0.56 = 0.08624) = 0.09 and ceil(0.07 × 5 × 0.25 × 0.75 = 0.065625) = 0.07.
        assert sorted(D(f["fee"]) for f in fills["items"]) == [D("0.07"), D("0.09")]
        assert fills["items"][-1]["cash_after"] == "96.3900"  # 100 − 2.20 − 1.25 − 0.16
        page = (await client.get(f"{BASE}/{sid}/fills", params={"limit": 1})).json()
        assert len(page["items"]) == 1
        rest = (await client.get(f"{BASE}/{sid}/fills", params={"after": page["next_after"]})).json()
        assert [f["id"] for f in page["items"] + rest["items"]] == [f["id"] for f in fills["items"]]

        fill_data = fill_event.json()
        assert fill_data["session_id"] == sid
        assert fill_data["ticker"] in (t1, t2)
        assert position_event.json()["session_id"] == sid
        assert D(position_event.json()["contracts"]) == 5
        assert equity_event.json()["session_id"] == sid

        positions = {p["ticker"]: p for p in (await client.get(f"{BASE}/{sid}/positions")).json()}
        assert positions.keys() == {t1, t2}
        p1, p2 = positions[t1], positions[t2]
        assert (D(p1["contracts"]), D(p1["avg_price"]), D(p1["mark"])) == (D(5), D("0.44"), D("0.50"))
        assert D(p1["unrealized_pnl"]) == D("0.30")
        assert (D(p2["avg_price"]), D(p2["mark"]), D(p2["unrealized_pnl"])) == (D("0.25"), D("0.18"), D("-0.35"))

        equity = (await client.get(f"{BASE}/{sid}/equity")).json()
        assert equity
        assert all(D(e["equity"]) > 0 for e in equity)
        assert [e["ts"] for e in equity] == sorted(e["ts"] for e in equity)

        view = (await client.get(f"{BASE}/{sid}")).json()
        # Equity: cash 96.39 + 5 × 0.50 + 5 × 0.18 = 99.79; total −0.21 = fees −0.16 + marks +0.30 −0.35.
        assert (D(view["cash"]), D(view["equity"]), D(view["total_pnl"])) == (D("96.39"), D("99.79"), D("-0.21"))
        assert (D(view["fees_paid"]), view["num_fills"]) == (D("0.16"), 2)
        assert D(view["realised_pnl"]) + D(view["unrealised_pnl"]) == D(view["total_pnl"])

        perf = await client.get("/api/v1/strategies/buy_and_hold/performance")
        assert perf.status_code == 200, perf.text
        sp = perf.json()
        assert {"total_pnl", "unrealized_pnl", "sharpe_ratio", "positions"} <= sp.keys()
        assert {"realized_pnl", "max_drawdown", "exposure", "sessions", "backtest_gate"} <= sp.keys()
        assert sp["strategy"] == "buy_and_hold"
        assert [s["id"] for s in sp["sessions"]] == [sid]  # the only running session of this database
        assert D(sp["total_pnl"]) == D("-0.21")
        assert D(sp["realized_pnl"]) + D(sp["unrealized_pnl"]) == D(sp["total_pnl"])
        assert D(sp["exposure"]) == D("3.45")  # 5 × 0.44 + 5 × 0.25, at cost
        assert sorted(p["ticker"] for p in sp["positions"]) == sorted([t1, t2])
        gate = sp["backtest_gate"]
        assert (gate["threshold"], gate["passed"], gate["backtest_id"]) == (0.5, False, None)
        assert "no finished backtest" in gate["note"]
        other = (await client.get("/api/v1/strategies/momentum/performance")).json()
        assert (other["sessions"], other["positions"], D(other["total_pnl"]), other["sharpe_ratio"]) == (
            [],
            [],
            0,
            None,
        )

        # The same rows replayed as a backtest give the same fills: an empty divergence report.
        rep = (await client.get(f"{BASE}/{sid}/compare")).json()
        assert (rep["paper_fills"], rep["backtest_fills"]) == (2, 2)
        assert (rep["differences"], rep["unexplained"]) == ([], 0)
        assert D(rep["paper_pnl"]) == D(rep["backtest_pnl"])

        assert (await client.post(f"{BASE}/{sid}/stop")).status_code == 200
        stopped = await reader.until("paper_session")
        assert (stopped.json()["session_id"], stopped.json()["kind"]) == (sid, "stopped")
        assert (await client.get("/api/v1/strategies/buy_and_hold/performance")).json()["sessions"] == []


async def test_the_gate_reads_the_latest_backtest_of_the_chosen_window(own_db: tuple[str, AsyncEngine]) -> None:
    url, engine = own_db
    app = create_app(make_settings(url), engine=engine)

    async def finished(start: str, end: str, sharpe: float, age_minutes: int) -> None:
        async with engine.begin() as c:
            await c.execute(
                text(
                    "INSERT INTO backtest_results (strategy_name, strategy_version, params, window_start, window_end, "
                    "status, finished_at, metrics) VALUES ('momentum', '1', '{}', :s, :e, 'done', "
                    "now() - make_interval(mins => :age), CAST(:m AS jsonb))"
                ),
                {
                    "s": datetime.fromisoformat(start),
                    "e": datetime.fromisoformat(end),
                    "age": age_minutes,
                    "m": f'{{"sharpe": {sharpe}}}',
                },
            )

    await finished("2026-09-01T00:00:00+00:00", "2026-10-01T00:00:00+00:00", 0.9, 30)  # older, September
    await finished("2026-10-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00", 0.2, 10)  # newest, October
    async with serve(app) as client:
        latest = (await client.get("/api/v1/strategies/momentum/performance")).json()["backtest_gate"]
        assert (latest["sharpe_ratio"], latest["passed"]) == (0.2, False)
        assert "not met" in latest["note"]
        september = (
            await client.get(
                "/api/v1/strategies/momentum/performance",
                params={"gate_start": "2026-09-01", "gate_end": "2026-10-01"},
            )
        ).json()["backtest_gate"]
        assert (september["sharpe_ratio"], september["passed"]) == (0.9, True)
        assert september["window_start"].startswith("2026-09-01")
        none = (
            await client.get("/api/v1/strategies/momentum/performance", params={"gate_start": "2027-01-01"})
        ).json()["backtest_gate"]
        assert (none["backtest_id"], none["passed"]) == (None, False)
        bad = await client.get("/api/v1/strategies/momentum/performance", params={"gate_end": "someday"})
        assert_problem(bad, 422)
        assert "too short" not in latest["note"] + september["note"]  # no annualisation block: nothing to say

    # A Sharpe annualised from two minutes of data passes or fails the gate all the same, and the note says so.
    async with engine.begin() as c:
        await c.execute(
            text(
                "INSERT INTO backtest_results (strategy_name, strategy_version, params, window_start, window_end, "
                "status, finished_at, metrics) VALUES ('momentum', '1', '{}', now() - interval '10 minutes', now(), "
                "'done', now(), CAST(:m AS jsonb))"
            ),
            {"m": '{"sharpe": 38.2, "annualisation": {"returns": 2, "interval_seconds": 60}}'},
        )
    async with serve(app) as client:
        short = (await client.get("/api/v1/strategies/momentum/performance")).json()["backtest_gate"]
    assert (short["sharpe_ratio"], short["passed"]) == (38.2, True)
    assert short["note"].endswith("(annualised from 2 min of data: too short to read; run it over a week or more)")
