from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from kalshi_analytics.recorder.bulk import write_snapshots
from kalshi_analytics.recorder.rows import SnapshotRow


def _month_start(dt: datetime, months_ahead: int = 0) -> datetime:
    y, m = divmod(dt.month - 1 + months_ahead, 12)
    return datetime(dt.year + y, m + 1, 1, tzinfo=UTC)


async def _partition_of(conn: AsyncConnection, ticker: str) -> str:
    row = await conn.execute(
        text("SELECT tableoid::regclass::text FROM market_snapshots WHERE ticker = :t"), {"t": ticker}
    )
    return str(row.scalar_one())


async def test_partitions_exist_ahead_of_time(conn: AsyncConnection) -> None:
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'market_snapshots'::regclass"
        )
    )
    names = {r[0] for r in rows}
    now = datetime.now(UTC)
    for ahead in range(4):  # this month and the three after it
        m = _month_start(now, ahead)
        assert f"market_snapshots_y{m:%Y}m{m:%m}" in names
    assert "market_snapshots_default" in names


async def test_rows_land_in_their_month_and_far_future_rows_in_default(conn: AsyncConnection) -> None:
    now = datetime.now(UTC)
    # The last microsecond of a month belongs to that month, the first of the next to the next.
    boundary = _month_start(now, 1)
    rows = [
        SnapshotRow("KX-A", boundary - timedelta(microseconds=1), "poll", now, yes_bid=Decimal("0.41")),
        SnapshotRow("KX-B", boundary, "poll", now, yes_bid=Decimal("0.42")),
        SnapshotRow("KX-FAR", datetime(2099, 6, 15, tzinfo=UTC), "poll", now, yes_bid=Decimal("0.43")),
    ]
    assert (await write_snapshots(conn, rows)).new == 3
    this, nxt = _month_start(now), boundary
    assert await _partition_of(conn, "KX-A") == f"market_snapshots_y{this:%Y}m{this:%m}"
    assert await _partition_of(conn, "KX-B") == f"market_snapshots_y{nxt:%Y}m{nxt:%m}"
    assert await _partition_of(conn, "KX-FAR") == "market_snapshots_default"

    # Creating the partition later moves the waiting rows out of the default partition; nothing is lost.
    created = await conn.execute(text("SELECT ka_ensure_monthly_partitions('market_snapshots', '2099-06-01', 1)"))
    assert created.scalar_one() == 1
    assert await _partition_of(conn, "KX-FAR") == "market_snapshots_y2099m06"
    again = await conn.execute(text("SELECT ka_ensure_monthly_partitions('market_snapshots', '2099-06-01', 1)"))
    assert again.scalar_one() == 0, "creating partitions is idempotent"


async def test_partition_bounds_are_utc_months_whatever_the_session_time_zone(conn: AsyncConnection) -> None:
    await conn.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))  # UTC+14
    await conn.execute(text("SELECT ka_ensure_monthly_partitions('market_snapshots', '2098-01-01', 1)"))
    await conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    bound = await conn.execute(
        text("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'market_snapshots_y2098m01'")
    )
    assert bound.scalar_one() == "FOR VALUES FROM ('2098-01-01 00:00:00+00') TO ('2098-02-01 00:00:00+00')"
