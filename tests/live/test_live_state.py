"""``GET /api/v1/paper-sessions/{id}/live``: a session page's state in one database snapshot, with the journal id it
is as of — and the live stream resumed from that id brings exactly what changed later, nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal as D

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import create_app
from tests.conftest import wait_until
from tests.fixtures.app import assert_problem, make_settings, market, ticker, write
from tests.live.test_endpoints import BASE, body, live_runner, quotes
from tests.markets.conftest import running_api, sse

KINDS = "paper_session,paper_fill,paper_position,paper_equity"


async def test_live_state_is_one_instant_and_the_stream_resumes_after_it(
    own_db: tuple[str, AsyncEngine], app_factory: Callable[..., FastAPI]
) -> None:
    url, engine = own_db
    t1, t2 = ticker("KXPLIVE"), ticker("KXPLIVE")
    await write(engine, market(t1), market(t2))
    app = create_app(make_settings(url, api_stream_heartbeat_seconds=0.3, api_backtest_worker=False), engine=engine)
    async with running_api(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        assert_problem(await client.get(f"{BASE}/{uuid.uuid4()}/live"), 404)
        r = await client.post(
            BASE, json=body(t1, market_filter={"tickers": [t1, t2]}, initial_capital="100", equity_interval_seconds=1)
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]

        first = (await client.get(f"{BASE}/{sid}/live")).json()
        assert first["session"] == (await client.get(f"{BASE}/{sid}")).json()
        assert [e["kind"] for e in first["events"]] == ["started"]
        assert (first["positions"], first["fills"], first["equity"]) == ([], [], [])
        as_of = first["as_of_event_id"]
        assert as_of > 0

        # The runner trades after that instant: the stream resumed from it brings the fills, positions and
        # equity, and not the start the state already held.
        async with sse(client, {"kinds": KINDS, "last_event_id": str(as_of)}) as reader:
            ready = await reader.until("ready")
            assert ready.json()["resumed"] is True
            start = datetime.fromisoformat(r.json()["started_at"]) + timedelta(seconds=1)
            async with live_runner(engine) as runner:
                await asyncio.wait_for(runner.ready.wait(), 30)
                await write(
                    engine,
                    *quotes(t1, start, [("0.40", "0.44"), ("0.45", "0.47")]),
                    *quotes(t2, start, [("0.20", "0.25")]),
                )

                async def two_fills() -> bool:
                    return (await client.get(f"{BASE}/{sid}")).json()["num_fills"] == 2

                await wait_until(two_fills, "the runner to fill both markets", seconds=30, interval=0.1)
            got = await reader.collect(1.5)
            assert all(int(e.id or 0) > as_of for e in got)
            assert all(e.json()["session_id"] == sid for e in got)
            assert "paper_session" not in [e.event for e in got]  # `started` was in the state already
            assert sorted(e.json()["ticker"] for e in got if e.event == "paper_fill") == sorted([t1, t2])
            assert {e.json()["ticker"] for e in got if e.event == "paper_position"} == {t1, t2}
            assert "paper_equity" in [e.event for e in got]
            last_streamed = max(int(e.id or 0) for e in got)

            # The state read now is as of the last event streamed, and holds what the other routes say.
            now = (await client.get(f"{BASE}/{sid}/live")).json()
            assert now["as_of_event_id"] == last_streamed
            assert now["fills"] == (await client.get(f"{BASE}/{sid}/fills")).json()["items"]
            assert now["positions"] == (await client.get(f"{BASE}/{sid}/positions")).json()
            assert now["equity"] == (await client.get(f"{BASE}/{sid}/equity")).json()
            assert now["events"] == (await client.get(f"{BASE}/{sid}/events")).json()
            assert now["session"]["num_fills"] == 2
            assert D(now["session"]["cash"]) == D(now["fills"][-1]["cash_after"])
            latest = (await client.get(f"{BASE}/{sid}/live", params={"fills_limit": 1})).json()["fills"]
            assert latest == now["fills"][-1:]

            assert (await client.post(f"{BASE}/{sid}/stop")).status_code == 200
            stopped = await reader.until("paper_session")
            assert (stopped.json()["session_id"], stopped.json()["kind"]) == (sid, "stopped")
            after = (await client.get(f"{BASE}/{sid}/live")).json()
            assert after["as_of_event_id"] == int(stopped.id or 0)
            assert (after["session"]["status"], [e["kind"] for e in after["events"]][-1]) == ("stopped", "stopped")
        assert_problem(await client.get(f"{BASE}/{sid}/live", params={"fills_limit": 0}), 422)
