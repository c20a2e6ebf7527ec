"""The live runner's leadership and the backtest queue's admission each take a PostgreSQL advisory lock. With the
keys the product really uses (tests elsewhere give the runner a random key), a leading runner must not stop a
backtest from being queued — it did: both used the same key, and every create waited for the runner to go."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.service import BacktestRequest, enqueue_backtest
from kalshi_analytics.db import locks
from kalshi_analytics.live.runner import LiveRunner
from tests.conftest import wait_until


def test_every_advisory_lock_key_of_the_product_is_its_own() -> None:
    keys = locks.ALL
    assert len(set(keys.values())) == len(keys), keys


async def test_a_backtest_is_queued_while_the_live_runner_leads(own_db: tuple[str, AsyncEngine]) -> None:
    _, engine = own_db
    runner = LiveRunner(engine, idle_wait=0.1, refresh_seconds=0.2)  # the product's own lock key
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await wait_until(runner.ready.is_set, "the runner to lead", seconds=20)
        now = datetime.now(UTC)
        request = BacktestRequest(strategy="buy_and_hold", start=now - timedelta(hours=1), end=now)
        queued = await asyncio.wait_for(enqueue_backtest(engine, request, max_queued=10, keep_empty=True), 10)
        assert queued
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
