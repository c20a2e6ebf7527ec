"""The in-process backtest worker the API runs in its lifespan (``API_BACKTEST_WORKER``).

An asyncio task that calls :func:`~kalshi_analytics.backtests.service.execute_queued` when a create wakes it and
otherwise every ``poll_seconds`` (so runs queued by other replicas or processes are picked up too). Rows are
claimed with ``FOR UPDATE SKIP LOCKED``, so any number of replicas may run workers. Cancelled on shutdown; a run
interrupted that way stays ``running``.

The simulation is synchronous CPU work, so each pass runs in a worker thread with its own event loop and its
own small engine: the API's loop keeps answering reads meanwhile (sharing the CPU, not blocked). Replicas that
must keep every core for reads can still set ``API_BACKTEST_WORKER=false`` and leave runs to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.service import execute_queued
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.logs import get_logger

log = get_logger(__name__)


def _execute_in_thread(url: URL) -> list[Any]:
    """One pass of the queue on this thread's own event loop and engine (engines are bound to their loop)."""

    async def run() -> list[Any]:
        engine = create_engine(url, pool_size=2)
        try:
            return list(await execute_queued(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


class BacktestWorker:
    def __init__(self, engine: AsyncEngine, poll_seconds: float) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Run queued backtests now (called after a create)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="backtest-worker")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        failing = False
        while True:
            self._wake.clear()
            try:
                done = await asyncio.to_thread(_execute_in_thread, self.engine.url)
            except Exception as exc:  # the database may be away for a while: keep polling, say so once
                if not failing:
                    log.warning("backtest_worker_error", error=f"{type(exc).__name__}: {exc}")
                failing = True
            else:
                if failing:
                    log.info("backtest_worker_recovered")
                failing = False
                if done:
                    log.info("backtests_executed", count=len(done))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
