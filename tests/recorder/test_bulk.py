from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kalshi_analytics.recorder.bulk import WriteResult, write_snapshots
from kalshi_analytics.recorder.rows import SnapshotRow

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _batch(n: int, source: str = "poll") -> list[SnapshotRow]:
    return [
        SnapshotRow(
            ticker=f"KXTEST-{i % 7}",
            ts=T0 + timedelta(seconds=i),
            source=source,
            received_at=T0 + timedelta(seconds=i, milliseconds=40),
            sequence=i,
            yes_bid=Decimal("0.4500"),
            yes_ask=Decimal("0.4700"),
            no_bid=Decimal("0.5300"),
            no_ask=Decimal("0.5500"),
            last_price=Decimal("0.4600"),
            yes_bid_size=Decimal("31.54"),
            volume=Decimal(1000 + i),
            open_interest=Decimal("2020.47"),
            status="active",
            raw_data={"market_ticker": f"KXTEST-{i % 7}", "price_dollars": "0.4600"},
        )
        for i in range(n)
    ]


async def test_same_batch_twice_gives_zero_new_rows(conn: AsyncConnection) -> None:
    batch = _batch(500)
    first = await write_snapshots(conn, batch)
    second = await write_snapshots(conn, batch)
    assert first == WriteResult(new=500, duplicates=0)
    assert second == WriteResult(new=0, duplicates=500)
    count = await conn.execute(text("SELECT count(*) FROM market_snapshots WHERE ticker LIKE 'KXTEST-%'"))
    assert count.scalar_one() == 500


async def test_duplicates_inside_one_batch_and_other_sources_are_counted_apart(conn: AsyncConnection) -> None:
    batch = _batch(10)
    mixed = [*batch, batch[0], batch[1], *_batch(3, source="websocket")]
    result = await write_snapshots(conn, mixed)
    # Same (ticker, ts) but another source is a different observation, not a duplicate.
    assert result == WriteResult(new=13, duplicates=2)


async def test_empty_batch_is_a_no_op(conn: AsyncConnection) -> None:
    assert await write_snapshots(conn, []) == WriteResult(0, 0)


async def test_sub_cent_prices_round_trip_exactly(conn: AsyncConnection) -> None:
    prices = [Decimal("0.0001"), Decimal("0.9999"), Decimal("0.0105"), Decimal("0.5"), Decimal("1")]
    rows = [
        SnapshotRow("KXSUB", T0 + timedelta(seconds=i), "websocket", T0, yes_bid=p, yes_bid_size=Decimal("0.01"))
        for i, p in enumerate(prices)
    ]
    await write_snapshots(conn, rows)
    got = await conn.execute(
        text("SELECT yes_bid, yes_bid_size FROM market_snapshots WHERE ticker='KXSUB' ORDER BY ts")
    )
    result = got.all()
    assert [r[0] for r in result] == prices
    assert all(isinstance(r[0], Decimal) for r in result)
    assert {r[1] for r in result} == {Decimal("0.01")}
    # Stored with the 4 decimals of NUMERIC(10,4): 0.5 reads back as 0.5000.
    assert str(result[3][0]) == "0.5000"


async def test_time_zones_are_preserved_as_instants(conn: AsyncConnection) -> None:
    eastern = timezone(timedelta(hours=-5))
    ts = datetime(2026, 3, 8, 1, 59, 59, 123456, tzinfo=eastern)
    await write_snapshots(conn, [SnapshotRow("KXTZ", ts, "poll", ts + timedelta(seconds=1))])
    await conn.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))  # the session zone must not matter
    row = (await conn.execute(text("SELECT ts, received_at FROM market_snapshots WHERE ticker='KXTZ'"))).one()
    assert row.ts == ts
    assert row.ts.utcoffset() is not None
    assert row.ts.astimezone(UTC) == datetime(2026, 3, 8, 6, 59, 59, 123456, tzinfo=UTC)
    assert row.received_at - row.ts == timedelta(seconds=1)


async def test_raw_payload_is_stored_as_jsonb(conn: AsyncConnection) -> None:
    await write_snapshots(conn, _batch(1))
    raw = await conn.execute(text("SELECT raw_data->>'price_dollars' FROM market_snapshots WHERE ticker='KXTEST-0'"))
    assert raw.scalar_one() == "0.4600"


async def test_works_through_an_orm_session_unit_of_work(session: AsyncSession) -> None:
    result = await write_snapshots(session, _batch(3))
    await session.commit()  # a savepoint here; the outer test transaction is rolled back
    assert result.new == 3
