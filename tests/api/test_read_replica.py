"""``DB_READ_URL``: the API's market reads go to a replica, writes and the live stream stay on ``DB_URL``.

A second database stands in for the replica: a copy of the primary (``CREATE DATABASE … TEMPLATE``) taken after
some data was written, after which the primary alone gets more. What the API answers then tells which database
each route read.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import create_app
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.rows import SnapshotRow
from tests.conftest import _admin, drop_database, wait_until
from tests.fixtures.app import make_settings, market, serve, ticker, write
from tests.markets.conftest import running_api, sse


@pytest.fixture
async def primary_and_replica(
    own_db: tuple[str, AsyncEngine], server_url: str
) -> AsyncIterator[tuple[str, str, AsyncEngine, AsyncEngine, str, str]]:
    """The primary with market ``old`` (one snapshot, YES bid 0.40), copied to the replica; then, on the primary
    only, a newer snapshot of ``old`` (0.55) and a new market ``new``."""
    url, engine = own_db
    old, new = ticker("KXREPL"), ticker("KXREPL")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    await write(engine, market(old))
    await write(engine, SnapshotRow(ticker=old, ts=t0, source="poll", received_at=t0, yes_bid=Decimal("0.40")))
    await engine.dispose()  # a template must have no connections
    replica_url = make_url(url).set(database=f"ka_replica_{uuid.uuid4().hex[:10]}").render_as_string(False)
    await _admin(server_url, f'CREATE DATABASE "{make_url(replica_url).database}" TEMPLATE "{make_url(url).database}"')
    replica = create_engine(replica_url, pool_size=2)
    try:
        t1 = t0 + timedelta(minutes=1)
        await write(engine, SnapshotRow(ticker=old, ts=t1, source="poll", received_at=t1, yes_bid=Decimal("0.55")))
        await write(engine, market(new))
        yield url, replica_url, engine, replica, old, new
    finally:
        await replica.dispose()
        await drop_database(server_url, replica_url)


async def _count(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as c:
        return int((await c.execute(text(sql), params)).scalar_one())


async def test_market_reads_come_from_the_replica_and_writes_go_to_the_primary(
    primary_and_replica: tuple[str, str, AsyncEngine, AsyncEngine, str, str],
) -> None:
    url, replica_url, primary, replica, old, new = primary_and_replica
    settings = make_settings(url, db_read_url=replica_url, api_backtest_worker=False)
    async with serve(create_app(settings)) as client:
        # Reads: the replica's state, not the primary's.
        latest = await client.get(f"/api/v1/markets/{old}/latest")
        assert latest.status_code == 200, latest.text
        assert Decimal(latest.json()["yes_bid"]) == Decimal("0.40")
        history = await client.get(f"/api/v1/markets/{old}/history")
        assert history.status_code == 200, history.text
        assert [Decimal(r["yes_bid"]) for r in history.json()["items"]] == [Decimal("0.40")]
        assert (await client.get(f"/api/v1/markets/{new}")).status_code == 404
        listed = {m["ticker"] for m in (await client.get("/api/v1/markets", params={"limit": 1000})).json()["items"]}
        assert old in listed
        assert new not in listed

        # A write goes to the primary, and is read back from there (read-your-writes for backtests).
        body = {"strategy": "buy_and_hold", "start": "2026-03-01", "end": "2026-03-02", "keep_empty": True}
        created = await client.post("/api/v1/backtests", json=body | {"market_filter": {"tickers": [old]}})
        assert created.status_code == 202, created.text
        bid = created.json()["id"]
        sql = "SELECT count(*) FROM backtest_results WHERE id = :id"
        assert await _count(primary, sql, id=bid) == 1
        assert await _count(replica, sql, id=bid) == 0
        assert (await client.get(f"/api/v1/backtests/{bid}")).status_code == 200

    # Without DB_READ_URL the same routes read the primary.
    async with serve(create_app(make_settings(url, api_backtest_worker=False))) as client:
        latest = await client.get(f"/api/v1/markets/{old}/latest")
        assert Decimal(latest.json()["yes_bid"]) == Decimal("0.55")
        assert (await client.get(f"/api/v1/markets/{new}")).status_code == 200


async def test_the_live_stream_listens_on_the_primary(
    primary_and_replica: tuple[str, str, AsyncEngine, AsyncEngine, str, str],
) -> None:
    """The stream's LISTEN connection and its journal reads are the primary's even with a replica set: a snapshot
    committed on the primary only reaches a client."""
    url, replica_url, primary, _replica, old, _new = primary_and_replica
    app = create_app(make_settings(url, db_read_url=replica_url, api_stream_heartbeat_seconds=0.3))
    async with (
        running_api(app) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
        sse(client, {"tickers": old, "kinds": "snapshot"}) as reader,
    ):
        await reader.until("ready")
        now = datetime.now(UTC)
        row = SnapshotRow(ticker=old, ts=now, source="websocket", received_at=now, yes_bid=Decimal("0.61"))
        await write(primary, row)
        event = await reader.until("snapshot", seconds=5)
        assert Decimal(event.json()["yes_bid"]) == Decimal("0.61")


async def test_readiness_checks_the_replica_the_market_reads_use(
    primary_and_replica: tuple[str, str, AsyncEngine, AsyncEngine, str, str], server_url: str
) -> None:
    """A replica gone makes every market read a 503: the replica is part of readiness, so a load balancer stops
    sending this API traffic (it said ready before while every market read failed)."""
    url, replica_url, _primary, _replica, old, _new = primary_and_replica
    name = make_url(replica_url).database
    settings = make_settings(url, db_read_url=replica_url, api_backtest_worker=False, api_cache_mb=0)

    async def replica_check(client: httpx.AsyncClient) -> dict[str, object]:
        answer = await client.get("/api/v1/ready")  # 503 here in any case: no recorder heartbeat in this test
        checks: dict[str, dict[str, object]] = answer.json()["checks"]
        assert checks["database"]["ok"], checks
        return checks["read_replica"]

    async with serve(create_app(settings)) as client:
        check = await replica_check(client)
        assert check["ok"], check
        assert "reachable" in str(check["detail"])
        try:
            await _admin(server_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _admin(server_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            assert (await client.get(f"/api/v1/markets/{old}/latest")).status_code == 503
            check = await replica_check(client)
            assert not check["ok"]
            assert "read replica unreachable" in str(check["detail"])
        finally:
            await _admin(server_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await replica_check(client))["ok"]

        async def serving() -> bool:
            return (await client.get(f"/api/v1/markets/{old}/latest")).status_code == 200

        await wait_until(serving, "market reads again once the replica is back", seconds=2)
    # Without DB_READ_URL there is no replica to check.
    async with serve(create_app(make_settings(url, api_backtest_worker=False))) as client:
        assert "read_replica" not in (await client.get("/api/v1/ready")).json()["checks"]
