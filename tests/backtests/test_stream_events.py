"""A backtest's end reaches the live stream: ``backtest_finished`` (done or failed), with a journal id."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests import service
from tests.backtests.test_endpoints import body, settled_yes_market
from tests.markets.conftest import running_api, sse


async def test_finished_backtests_are_stream_events(app_factory: Callable[..., FastAPI], engine: AsyncEngine) -> None:
    t = await settled_yes_market(engine)
    # No worker in the app: the runs below are the only ones, done and failed exactly as the test says.
    app = app_factory(api_stream_heartbeat_seconds=0.3, api_backtest_worker=False)
    async with (
        running_api(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        sse(client, {"kinds": "backtest_finished"}) as reader,
    ):
        ready = await reader.until("ready")
        assert ready.json()["tickers"] == []
        ran = await service.run_backtest(engine, service.BacktestRequest(**body(t)))
        done = await reader.until("backtest_finished")
        assert int(done.id or 0) > int(ready.id or 0)
        data = done.json()
        assert (uuid.UUID(data["id"]), data["status"], data["strategy"]) == (ran, "done", "buy_and_hold")
        assert (data["total_pnl"], data["num_trades"], data["error"]) == ("5.6200", 1, None)

        queued = await service.enqueue_backtest(engine, service.BacktestRequest(**body(t)))
        await service._mark_failed(engine, queued, RuntimeError("boom"))
        failed = await reader.until("backtest_finished")
        assert int(failed.id or 0) > int(done.id or 0)
        assert (uuid.UUID(failed.json()["id"]), failed.json()["status"]) == (queued, "failed")
        assert failed.json()["error"] == "RuntimeError: boom"
