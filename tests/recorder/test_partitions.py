"""The leading recorder keeps monthly partitions ahead of the data."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.partitions import MONTHS_AHEAD, PARTITIONED, PartitionKeeper
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.recorder.conftest import fast_config, sim_settings


def months_from(first: date, n: int) -> list[date]:
    return [date(first.year + (first.month - 1 + i) // 12, (first.month - 1 + i) % 12 + 1, 1) for i in range(n)]


def names(table: str, months: list[date]) -> set[str]:
    return {f"{table}_y{m:%Y}m{m:%m}" for m in months}


async def partitions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = ANY(ARRAY['market_snapshots'::regclass, 'orderbook_snapshots'::regclass])"
            )
        )
        return {r[0] for r in rows}


async def drop(engine: AsyncEngine, tables: set[str]) -> None:
    async with engine.begin() as conn:
        for t in tables:
            await conn.execute(text(f"DROP TABLE {t}"))


async def test_a_recorder_creates_the_months_ahead_that_are_missing(recorder_db_url: str, tmp_path: Path) -> None:
    """A database migrated months ago has partitions up to a month that is close now: the leader creates the
    missing ones as it starts recording (before, every row of those months went to the default partition)."""
    now = datetime.now(UTC)
    ahead = months_from(date(now.year, now.month, 1), MONTHS_AHEAD + 1)[1:]
    wanted = set().union(*(names(t, ahead) for t in PARTITIONED))
    engine = create_engine(recorder_db_url)
    try:
        await drop(engine, wanted)
        assert not wanted & await partitions(engine)
        async with run_simulator(SimulatorConfig(seed=3, markets=4, port=0, rate_limit=None)) as sim:
            service = RecorderService(engine, sim_settings(sim), fast_config(tmp_path))
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            try:
                await asyncio.wait_for(service.ready.wait(), 30)

                async def created() -> bool:
                    return wanted <= await partitions(engine)

                await wait_until(created, "the months ahead to be created", seconds=15)
                assert service.metrics.value("kalshi_recorder_partition_checks_total") >= 1
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
    finally:
        await engine.dispose()


async def test_the_keeper_creates_the_months_ahead_of_its_clock_once(recorder_db_url: str) -> None:
    engine = create_engine(recorder_db_url)
    metrics = RecorderMetrics()
    keeper = PartitionKeeper(engine, metrics, clock=lambda: datetime(2031, 11, 30, 23, 59, tzinfo=UTC))
    try:
        assert await keeper.check()
        months = months_from(date(2031, 11, 1), MONTHS_AHEAD + 1)  # 2031-11 .. 2032-02, across the year
        assert set().union(*(names(t, months) for t in PARTITIONED)) <= await partitions(engine)
        before = await partitions(engine)
        assert await keeper.check()
        assert await partitions(engine) == before
        assert metrics.value("kalshi_recorder_partition_checks_total") == 2
    finally:
        await engine.dispose()


async def test_a_keeper_that_cannot_reach_the_database_counts_and_carries_on(recorder_db_url: str) -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    metrics = RecorderMetrics()
    try:
        assert not await PartitionKeeper(engine, metrics).check()
        assert metrics.value("kalshi_recorder_partition_failures_total") == 1
    finally:
        await engine.dispose()


async def test_a_keeper_waits_for_no_lock_longer_than_its_timeout(recorder_db_url: str) -> None:
    """Attaching a month takes the default partition exclusively; a request waiting for that lock would hold up
    every read queued behind it, so the keeper gives up after a moment and tries again later."""
    engine = create_engine(recorder_db_url)
    metrics = RecorderMetrics()
    keeper = PartitionKeeper(engine, metrics, clock=lambda: datetime(2033, 5, 1, tzinfo=UTC))
    try:
        async with engine.connect() as holder:
            await holder.execute(text("LOCK TABLE market_snapshots_default IN ACCESS EXCLUSIVE MODE"))
            began = time.monotonic()
            assert not await keeper.check()
            assert time.monotonic() - began < 10
            await holder.rollback()
        assert metrics.value("kalshi_recorder_partition_failures_total") == 1
        assert await keeper.check()  # the lock gone, the next try succeeds
    finally:
        await engine.dispose()
