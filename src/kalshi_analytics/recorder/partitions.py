"""Monthly partitions created ahead of the data, by the leading recorder.

``market_snapshots`` and ``orderbook_snapshots`` are range-partitioned by UTC month. The first migration creates
the month before it ran and the four after; a recorder that runs longer would then write every later row into
the default partition (accepted, but the monthly layout — fast COPY straight into the month, retention by
dropping a month — is gone for them). So the leader makes sure, when it starts recording and every few hours,
that this month and the next ``months_ahead`` have their partitions (``ka_ensure_monthly_partitions``, which
first moves any rows of such a month out of the default partition).

Attaching a partition locks the default partition exclusively, and a lock request waiting in the queue holds up
every read behind it: the statement gives up after ``LOCK_TIMEOUT`` and the keeper tries again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.metrics import RecorderMetrics

log = get_logger(__name__)

PARTITIONED = ("market_snapshots", "orderbook_snapshots")
MONTHS_AHEAD = 3
CHECK_SECONDS = 6 * 3600.0
RETRY_SECONDS = 60.0
LOCK_TIMEOUT = "2s"


def month_start(when: datetime) -> date:
    return date(when.year, when.month, 1)


async def ensure_partitions(
    engine: AsyncEngine, first: date, months: int, *, lock_timeout: str | None = LOCK_TIMEOUT
) -> dict[str, int]:
    """Create what is missing of the partitions of ``months`` months from ``first``; how many, by table. With
    ``lock_timeout=None`` it waits for its locks as long as it takes (a command a person started, say)."""
    created: dict[str, int] = {}
    async with engine.begin() as conn:
        if lock_timeout is not None:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        for table in PARTITIONED:
            result = await conn.execute(
                text("SELECT ka_ensure_monthly_partitions(CAST(:t AS regclass), :first, :n)"),
                {"t": table, "first": first, "n": months},
            )
            created[table] = int(result.scalar_one())
    return created


class PartitionKeeper:
    """The leader's loop: partitions ahead at once, then every ``every`` seconds; a failure (the database away,
    a lock not granted in time) is logged and tried again after ``retry`` seconds, never ending the recorder."""

    def __init__(
        self,
        engine: AsyncEngine,
        metrics: RecorderMetrics,
        *,
        months_ahead: int = MONTHS_AHEAD,
        every: float = CHECK_SECONDS,
        retry: float = RETRY_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.months_ahead = months_ahead
        self.every = every
        self.retry = retry
        self.clock = clock

    async def check(self) -> bool:
        """One pass; whether it succeeded."""
        try:
            created = await ensure_partitions(self.engine, month_start(self.clock()), self.months_ahead + 1)
        except Exception as exc:  # logged and retried: partitions are a month ahead of need
            self.metrics.partition_failures.inc()
            log.warning("partitions_not_checked", error=f"{type(exc).__name__}: {exc}", retry_s=self.retry)
            return False
        self.metrics.partition_checks.inc()
        if any(created.values()):
            log.info("partitions_created", months_ahead=self.months_ahead, **created)
        return True

    async def run(self) -> None:
        while True:
            checked = await self.check()
            await asyncio.sleep(self.every if checked else self.retry)
