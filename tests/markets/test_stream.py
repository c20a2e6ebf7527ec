"""The SSE stream end to end: a real uvicorn on 127.0.0.1, rows written through the recorder's Sink, the events
received by an httpx client. (With the simulator and the recorder service: test_stream_truth.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.kalshi.domain import PriceLevel
from kalshi_analytics.markets import stream
from kalshi_analytics.recorder.rows import GapOpened, GapRepaired, OrderbookRow, SnapshotRow, TradeRow
from tests.conftest import wait_until
from tests.fixtures.app import assert_problem, market, ticker, write
from tests.markets.conftest import Sse, running_api, sse

D = Decimal


@pytest.fixture
async def live(app_factory: Callable[..., FastAPI]) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = app_factory(api_stream_heartbeat_seconds=0.3)
    async with running_api(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield app, client


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def snap(t: str, ts: datetime, source: str = "websocket", **kw: object) -> SnapshotRow:
    return SnapshotRow(ticker=t, ts=ts, source=source, received_at=ts, **kw)  # type: ignore[arg-type]


def trade(t: str, ts: datetime, price: str = "0.55", trade_id: str | None = None) -> TradeRow:
    return TradeRow(
        trade_id=trade_id or f"T-{t}-{ts.timestamp()}",
        ticker=t,
        ts=ts,
        received_at=ts,
        yes_price=D(price),
        no_price=1 - D(price),
        count=D("3"),
        taker_side="yes",
    )


def ids(events: list[Sse]) -> list[int]:
    return [int(e.id) for e in events if e.id is not None]


async def test_each_committed_change_arrives_once_in_order(
    live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine
) -> None:
    app, client = live
    hub = app.state.stream_hub
    wanted, other = ticker(), ticker()
    await write(engine, market(wanted), market(other))
    async with sse(client, {"tickers": wanted}) as reader:
        ready = await reader.events()
        assert ready.event == "ready"  # no snapshot of `wanted` yet: no state to send
        assert ready.json()["resumed"] is False
        assert reader.retry is not None
        assert reader.retry <= 3000
        start = int(ready.id or "")
        assert hub.subscribers == 1
        t0 = _now()
        # One commit: a stream row and a poll row of the same instant, and a row of a market nobody asked for.
        await write(
            engine,
            snap(wanted, t0, "websocket", yes_bid=D("0.61"), yes_ask=D("0.63")),
            snap(other, t0, yes_bid=D("0.1")),
            snap(wanted, t0, "poll", yes_bid=D("0.60"), yes_ask=D("0.64")),
        )
        # Re-polls of an unchanged market touch it (the cache hears of it) but change nothing a client sees.
        for _ in range(3):
            await write(engine, market(wanted))
        await write(engine, trade(wanted, t0 + timedelta(seconds=1)))
        await write(engine, snap(wanted, t0 + timedelta(seconds=2), yes_bid=D("0.62"), yes_ask=D("0.63")))
        got = await reader.quiet(1.0)

    assert [(e.event, e.json()["ticker"]) for e in got] == [
        ("snapshot", wanted),
        ("snapshot", wanted),
        ("trade", wanted),
        ("snapshot", wanted),
    ]
    first, second, _, last = (e.json() for e in got)
    assert (first["source"], first["yes_bid"], first["implied_probability"]) == ("websocket", "0.6100", "0.6200")
    assert (first["implied_probability_source"], second["source"]) == ("mid", "poll")
    assert got[2].json()["yes_price"] == "0.5500"
    assert last["ts"] == (t0 + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    assert ids(got) == sorted(set(ids(got))), "every event has its own, increasing id"
    assert min(ids(got)) > start
    await wait_until(lambda: hub.subscribers == 0, "the subscription to go with its client", seconds=5)


async def test_on_connect_the_current_state_then_ready(
    live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine
) -> None:
    _, client = live
    a, b = ticker(), ticker()
    t0 = _now()
    await write(
        engine,
        market(a),
        market(b),
        snap(a, t0, yes_bid=D("0.4")),
        snap(a, t0 + timedelta(seconds=1), yes_bid=D("0.41")),
    )
    async with sse(client, {"tickers": f"{a},{b}"}) as reader:
        state = await reader.events()
        ready = await reader.events()
        # The latest snapshot of each ticker that has one, without an id (state, not news), then `ready`.
        assert (state.event, state.id, state.json()["yes_bid"]) == ("snapshot", None, "0.4100")
        assert ready.event == "ready"
        assert ready.id is not None
        assert ready.json()["tickers"] == sorted([a, b])
        # Idle: heartbeats only.
        beat = await reader.next(2)
        assert beat.event == "comment"


async def test_event_kinds_orderbook_status_and_gaps(
    live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine
) -> None:
    _, client = live
    t = ticker()
    await write(engine, market(t))
    t0 = _now()
    async with sse(client, {"tickers": t}) as reader:
        await reader.until("ready")
        await write(
            engine,
            OrderbookRow(
                t,
                t0,
                t0,
                "websocket",
                7,
                (PriceLevel(D("0.40"), D("10")), PriceLevel(D("0.45"), D("5"))),
                (PriceLevel(D("0.50"), D("2")),),
            ),
            market(t, status="closed"),
            GapOpened("gap-" + t, t0, "ticker", 3, t, "seq_jump", 5, 9, t0),
        )
        await write(
            engine, GapRepaired("gap-" + t, t0 + timedelta(seconds=1), t0 + timedelta(seconds=2), "get_snapshot")
        )
        await write(engine, market(t, status="closed"))  # no change: no event
        got = await reader.quiet(1.0)
    kinds = [e.event for e in got]
    assert kinds == ["orderbook", "market_status", "gap_opened", "gap_repaired"]
    book, status, opened, repaired = (e.json() for e in got)
    assert book["yes"][0] == {"price": "0.4500", "size": "5"}  # best first, as getOrderBook
    assert (book["best_yes_bid"], book["best_yes_ask"]) == ("0.4500", "0.5000")
    assert (status["status"], status["previous_status"]) == ("closed", "active")
    assert (opened["key"], opened["ticker"], opened["cause"]) == ("gap-" + t, t, "seq_jump")
    assert (repaired["key"], repaired["ticker"], repaired["repair_method"]) == ("gap-" + t, t, "get_snapshot")


async def test_kinds_choose_what_is_sent(live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine) -> None:
    _, client = live
    t = ticker()
    await write(engine, market(t))
    t0 = _now()
    async with sse(client, {"tickers": t, "kinds": "trade"}) as reader:
        await reader.until("ready")
        await write(engine, snap(t, t0, yes_bid=D("0.3")), trade(t, t0))
        got = await reader.quiet(1.0)
    assert [e.event for e in got] == ["trade"]


async def test_unknown_tickers_and_kinds_are_refused(
    live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine
) -> None:
    _, client = live
    known = ticker()
    await write(engine, market(known))
    r = await client.get("/api/v1/stream", params={"tickers": "NOPE"})
    body = assert_problem(r, 404)
    assert "NOPE" in body["detail"]
    r = await client.get("/api/v1/stream", params={"tickers": f"{known},NOPE-2"})
    body = assert_problem(r, 404)
    assert "NOPE-2" in body["detail"]
    assert known not in body["detail"]
    r = await client.get("/api/v1/stream", params={"tickers": known, "kinds": "snapshot,bogus"})
    assert assert_problem(r, 422)["errors"][0]["field"] == "query.kinds"
    r = await client.get("/api/v1/stream", params={"tickers": " , "})
    assert assert_problem(r, 422)["errors"][0]["field"] == "query.tickers"
    r = await client.get("/api/v1/stream")
    assert assert_problem(r, 422)["errors"][0]["field"] == "query.tickers"


async def test_resume_with_last_event_id_sends_what_was_missed(
    live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine
) -> None:
    _, client = live
    t = ticker()
    await write(engine, market(t))
    t0 = _now()
    async with sse(client, {"tickers": t}) as reader:
        await reader.until("ready")
        await write(engine, snap(t, t0, yes_bid=D("0.5")))
        seen = await reader.events()
    assert seen.event == "snapshot"
    assert seen.id is not None
    # Away: two commits happen.
    await write(engine, snap(t, t0 + timedelta(seconds=1), yes_bid=D("0.51")), trade(t, t0 + timedelta(seconds=1)))
    await write(engine, snap(t, t0 + timedelta(seconds=2), yes_bid=D("0.52")))
    async with sse(client, {"tickers": t}, {"Last-Event-ID": seen.id}) as reader:
        ready = await reader.events()
        assert (ready.event, ready.json()["resumed"]) == ("ready", True)
        assert ready.id == seen.id
        got = await reader.quiet(1.0)
    assert [(e.event, e.json().get("yes_bid")) for e in got] == [
        ("snapshot", "0.5100"),
        ("trade", None),
        ("snapshot", "0.5200"),
    ]
    assert ids(got) == sorted(set(ids(got)))
    assert min(ids(got)) > int(seen.id)
    # The query parameter does the same for clients that cannot set headers.
    async with sse(client, {"tickers": t, "last_event_id": seen.id}) as reader:
        await reader.until("ready")
        assert len(await reader.quiet(1.0)) == 3


async def test_a_resume_beyond_the_window_gets_a_reset(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    app = app_factory(api_stream_heartbeat_seconds=0.3, stream_resume_seconds=1)
    t = ticker()
    await write(engine, market(t))
    t0 = _now()
    async with running_api(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        async with sse(client, {"tickers": t}) as reader:
            old = (await reader.until("ready")).id
        assert old is not None
        await write(engine, snap(t, t0, yes_bid=D("0.5")))
        await asyncio.sleep(1.5)
        await write(engine, snap(t, t0 + timedelta(seconds=1), yes_bid=D("0.6")))
        for last_id in (old, "not-a-number", str(10**15)):
            async with sse(client, {"tickers": t}, {"Last-Event-ID": last_id}) as reader:
                reset = await reader.events()
                assert reset.event == "reset", last_id
                assert reset.json()["reason"]
                # Then a fresh start: the current state and a new position.
                state = await reader.events()
                assert (state.event, state.json()["yes_bid"]) == ("snapshot", "0.6000")
                ready = await reader.events()
                assert ready.event == "ready"
                assert int(ready.id or 0) > int(old)


async def test_a_slow_subscriber_catches_up_from_the_journal(
    live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "SUBSCRIBER_QUEUE", 4)
    _, client = live
    t = ticker()
    await write(engine, market(t))
    t0 = _now()
    rows = [snap(t, t0 + timedelta(milliseconds=i), yes_bid=D("0.5"), volume=D(i)) for i in range(60)]
    async with sse(client, {"tickers": t}) as reader:
        await reader.until("ready")
        await write(engine, *rows)  # one commit of 60 events: far more than the queue holds
        got = await reader.quiet(1.0)
    assert [e.json()["volume"] for e in got] == [str(i) for i in range(60)]
    assert ids(got) == sorted(set(ids(got)))


async def test_events_carry_what_the_rest_routes_answer(
    live: tuple[FastAPI, httpx.AsyncClient], engine: AsyncEngine
) -> None:
    _, client = live
    t = ticker()
    await write(engine, market(t))
    t0 = datetime.now(UTC)  # with microseconds
    book = OrderbookRow(t, t0, t0, "websocket", 7, (PriceLevel(D("0.4"), D("10.5")), PriceLevel(D("0.45"), D("5"))), ())
    async with sse(client, {"tickers": t}) as reader:
        await reader.until("ready")
        await write(
            engine,
            snap(t, t0, yes_bid=D("0.4"), yes_ask=D("0.7"), last_price=D("0.55"), volume=D("12.50"), sequence=9),
            trade(t, t0, "0.4321"),
            book,
        )
        got = {e.event: e.json() for e in await reader.quiet(1.0)}
    latest = (await client.get(f"/api/v1/markets/{t}/latest")).json()
    assert got["snapshot"] == latest
    assert latest["implied_probability_source"] == "last"  # a spread too wide for the mid
    [listed] = (await client.get(f"/api/v1/markets/{t}/trades")).json()["items"]
    assert got["trade"] == listed
    assert got["orderbook"] == (await client.get(f"/api/v1/markets/{t}/orderbook", params={"depth": 1000})).json()
    assert got["orderbook"]["no"] == []
    assert got["orderbook"]["best_yes_ask"] is None
