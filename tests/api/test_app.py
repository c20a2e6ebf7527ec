"""Cross-cutting API behaviour: error bodies, CORS, rate limits, health/readiness, recorder status, metrics."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kalshi_analytics.db import migrations
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.leader import UPSERT_HEARTBEAT_SQL
from kalshi_analytics.recorder.rows import GapOpened
from tests.fixtures.app import ALLOWED_ORIGIN, assert_problem, make_settings, market, serve, ticker, write


async def test_unknown_route_and_method_use_the_problem_body(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/nope"), 404)
    assert body["path"] == "/api/v1/nope"
    assert body["type"].endswith("/not-found")  # type: ignore[union-attr]
    body = assert_problem(await client.post("/api/v1/markets"), 405)
    assert body["method"] == "POST"


async def test_unexpected_error_is_a_generic_500_without_traceback(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/api/v1/boom", boom)
    async with serve(app) as client:
        r = await client.get("/api/v1/boom")
    body = assert_problem(r, 500)
    assert "hunter2" not in r.text
    assert "RuntimeError" not in r.text
    assert "incident" in str(body["detail"])


async def test_cors_preflight_allowed_and_denied(client: httpx.AsyncClient) -> None:
    headers = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"}
    r = await client.options("/api/v1/markets", headers=headers)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    r = await client.options("/api/v1/markets", headers={**headers, "Origin": "http://evil.example"})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    r = await client.get("/api/v1/health", headers={"Origin": ALLOWED_ORIGIN})
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


async def test_rate_limit_429_with_retry_after(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(api_rate_limit_enabled=True, api_rate_read="3/minute", api_rate_expensive="1/minute")
    async with serve(app) as client:
        codes = [(await client.get("/api/v1/markets/NOPE-RL")).status_code for _ in range(3)]
        assert codes == [404, 404, 404]
        r = await client.get("/api/v1/markets/NOPE-RL")
        body = assert_problem(r, 429)
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert "3 per 1 minute" in str(body["detail"])
        # Liveness is never limited.
        assert (await client.get("/api/v1/health")).status_code == 200


async def test_default_limits_let_a_dashboard_refresh_every_second(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(api_rate_limit_enabled=True)
    async with serve(app) as client:
        # A dashboard polling 5 routes once a second for a minute: 300 reads, under 1200/minute.
        codes = {(await client.get("/api/v1/markets", params={"limit": 1})).status_code for _ in range(300)}
    assert codes == {200}


async def test_health_and_ready(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    assert (await client.get("/api/v1/health")).json() == {"status": "ok"}
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM recorder_heartbeats WHERE instance_id LIKE 'api-test-%'"))
        await conn.execute(
            UPSERT_HEARTBEAT_SQL,
            {
                "instance_id": "api-test-leader",
                "role": "leader",
                "hostname": "h",
                "pid": 1,
                "started_at": datetime.now(UTC),
                "leader_since": datetime.now(UTC),
                "info": json.dumps({"queue_depth": 0}),
            },
        )
        await _lease(conn, "api-test-leader")
    r = await client.get("/api/v1/ready")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"
    assert set(r.json()["checks"]) == {"database", "migrations", "recorder"}

    status = (await client.get("/api/v1/recorder/status")).json()
    assert status["leader"]["instance_id"] in {i["instance_id"] for i in status["instances"]}
    assert 0 <= status["lag_seconds"] < 60  # its heartbeat was just written

    async with engine.begin() as conn:  # the leader goes quiet
        await conn.execute(
            text("UPDATE recorder_heartbeats SET heartbeat_at = now() - interval '1 hour' WHERE role = 'leader'")
        )
    body = assert_problem(await client.get("/api/v1/ready"), 503)
    assert "recorder" in str(body["detail"])
    assert body["checks"]["recorder"]["ok"] is False  # type: ignore[index]


async def _lease(conn: AsyncConnection, holder: str, *, seconds: int = 3600) -> None:
    await conn.execute(
        text(
            "INSERT INTO recorder_lease (lock_key, epoch, holder, backend_pid, acquired_at, renewed_at, lease_until) "
            "VALUES (:k, 1, :h, NULL, now(), now(), now() + make_interval(secs => :s))"
        ),
        {"k": random.randrange(1, 2**62), "h": holder, "s": seconds},
    )


async def _beat(engine: AsyncEngine, instance_id: str, role: str, info: dict[str, object]) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM recorder_heartbeats WHERE role = 'leader'"))
        await conn.execute(
            UPSERT_HEARTBEAT_SQL,
            {
                "instance_id": instance_id,
                "role": role,
                "hostname": "h",
                "pid": 1,
                "started_at": datetime.now(UTC),
                "leader_since": datetime.now(UTC),
                "info": json.dumps(info),
            },
        )


async def test_ready_says_the_leader_holds_rows_through_a_database_outage(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _beat(engine, "api-test-holder", "leader", {"held": 1234, "db_down_since": "2026-11-28T02:00:00+00:00"})
    body = assert_problem(await client.get("/api/v1/ready"), 503)
    detail = body["checks"]["recorder"]["detail"]  # type: ignore[index]
    assert "api-test-holder holding 1234 items during a database outage (since 2026-11-28T02:00:00+00:00)" in detail
    assert "holding 1234 items" in str(body["detail"])


async def test_ready_says_the_database_is_unreachable(app: FastAPI) -> None:
    eng = create_engine("postgresql://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        async with serve(app) as client:
            app.state.engine = eng  # the database goes away after start-up
            body = assert_problem(await client.get("/api/v1/ready"), 503)
        assert body["checks"]["database"]["ok"] is False  # type: ignore[index]
        assert "database: database unreachable" in str(body["detail"])
    finally:
        await eng.dispose()


async def test_recorder_status_shows_a_leader_without_a_live_lease_as_lapsed(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _beat(engine, "api-test-dead-leader", "leader", {})
    status = (await client.get("/api/v1/recorder/status")).json()
    roles = {i["instance_id"]: i["role"] for i in status["instances"]}
    assert roles["api-test-dead-leader"] == "lapsed"
    assert status["leader"] is None

    async with engine.begin() as conn:
        await _lease(conn, "api-test-dead-leader")
    status = (await client.get("/api/v1/recorder/status")).json()
    assert status["leader"]["instance_id"] == "api-test-dead-leader"
    assert status["commit_lag_p50_seconds"] is None  # this leader reported no lag


async def test_recorder_status_shows_the_commit_lag_the_leader_logs(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _beat(engine, "api-test-lagging-leader", "leader", {"commit_lag_p50_s": 0.039, "commit_lag_p99_s": 0.475})
    async with engine.begin() as conn:
        await _lease(conn, "api-test-lagging-leader")
    status = (await client.get("/api/v1/recorder/status")).json()
    assert (status["commit_lag_p50_seconds"], status["commit_lag_p99_seconds"]) == (0.039, 0.475)


async def test_recorder_status_shows_the_leaders_rates_and_rejections(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    info = {
        "msgs_per_s": 41.5,
        "messages": 1200,
        "rows_written": 900,
        "queue_depth": 3,
        "rejected": {"unparseable": 2, "database_refused": 1, "junk": "x"},
    }
    await _beat(engine, "api-test-busy-leader", "leader", info)
    async with engine.begin() as conn:
        await _lease(conn, "api-test-busy-leader")
    status = (await client.get("/api/v1/recorder/status")).json()
    assert status["messages_per_second"] == 41.5
    assert (status["messages"], status["rows_written"], status["queue_depth"]) == (1200, 900, 3)
    assert status["rejected"] == {"unparseable": 2, "database_refused": 1}  # a count that is not a number is left out
    assert status["rejected_total"] == 3


async def test_recorder_status_without_a_leader_reports_no_rates(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await _beat(engine, "api-test-standby-only", "standby", {"msgs_per_s": 9.0, "rejected": {"unparseable": 5}})
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM recorder_heartbeats WHERE instance_id <> 'api-test-standby-only'"))
    status = (await client.get("/api/v1/recorder/status")).json()
    assert status["leader"] is None
    assert (status["messages_per_second"], status["rejected"], status["rejected_total"]) == (None, {}, 0)


async def recorder_started(eng: AsyncEngine, at: datetime, instance_id: str = "gap-hours-recorder") -> None:
    """A recorder that started at ``at``: coverage counts from the first one's start."""
    async with eng.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO recorder_heartbeats (instance_id, role, hostname, pid, started_at, heartbeat_at) "
                "VALUES (:i, 'stopped', 'test', 1, :at, :at)"
            ),
            {"i": instance_id, "at": at},
        )


async def test_recorder_status_tells_gaps_and_coverage_hour_by_hour(own_db: tuple[str, AsyncEngine]) -> None:
    from kalshi_analytics.api.app import create_app

    url, eng = own_db
    async with eng.begin() as conn:
        now = (await conn.execute(text("SELECT now()"))).scalar_one()
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    m = timedelta(minutes=1)
    await recorder_started(eng, now - timedelta(days=2))
    gaps = [  # (start, end, repaired): two overlapping gaps (10–30 min), one across the next hour (50–70 min)
        (hour + 10 * m, hour + 20 * m, True),
        (hour + 15 * m, hour + 30 * m, False),
        (hour + 50 * m, hour + 70 * m, False),
        (hour - timedelta(days=3), hour - timedelta(days=2), True),  # long before the last day: not counted
    ]
    async with eng.begin() as conn:
        for i, (start, end, repaired) in enumerate(gaps):
            await conn.execute(
                text(
                    "INSERT INTO feed_gaps (key, detected_at, channel, market_ticker, cause, gap_start, gap_end, "
                    "repaired_at, repair_method) VALUES (:k, :s, 'orderbook_delta', 'KX-GAP', 'disconnect', :s, :e, "
                    ":r, :rm)"
                ),
                {
                    "k": f"hours-{i}",
                    "s": start,
                    "e": end,
                    "r": end if repaired else None,
                    "rm": "rest" if repaired else None,
                },
            )
    app = create_app(make_settings(url), engine=eng)
    async with serve(app) as client:
        status = (await client.get("/api/v1/recorder/status")).json()
    hours = status["gap_hours"]
    assert len(hours) == 24
    starts = [datetime.fromisoformat(h["hour_start"]) for h in hours]
    assert starts == sorted(starts)
    assert starts[-1] == now.replace(minute=0, second=0, microsecond=0)
    by_start = dict(zip(starts, hours, strict=True))
    first = by_start[hour]
    assert (first["gaps_started"], first["gaps_open"], first["gaps_repaired"]) == (3, 2, 1)
    assert first["seconds_in_gaps"] == 30 * 60  # 10–30 (the overlap counted once) and 50–60
    assert abs(first["coverage"] - 0.5) < 1e-9
    second = by_start[hour + timedelta(hours=1)]
    assert (second["gaps_started"], second["seconds_in_gaps"]) == (0, 10 * 60)
    quiet = [h for s, h in by_start.items() if s not in (hour, hour + timedelta(hours=1))]
    assert all(h["coverage"] == 1 and h["gaps_started"] == 0 for h in quiet)


async def test_recorder_status_runs_an_open_gap_to_now(own_db: tuple[str, AsyncEngine]) -> None:
    from kalshi_analytics.api.app import create_app

    url, eng = own_db
    await recorder_started(eng, datetime.now(UTC) - timedelta(days=2))
    async with eng.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO feed_gaps (key, detected_at, channel, cause, gap_start) "
                "VALUES ('open-1', now(), 'ticker', 'outage', now() - interval '90 minutes')"
            )
        )
    app = create_app(make_settings(url), engine=eng)
    async with serve(app) as client:
        hours = (await client.get("/api/v1/recorder/status")).json()["gap_hours"]
    assert hours[-1]["coverage"] == 0  # the current hour, wholly inside the open gap so far
    assert hours[-2]["coverage"] < 1
    assert sum(h["gaps_open"] for h in hours) == 1


async def test_recorder_status_counts_a_gap_timed_ahead_of_the_database_clock_in_the_current_hour(
    own_db: tuple[str, AsyncEngine],
) -> None:
    """The exchange's clock (which times gaps) may run ahead of the database's: such a gap is this hour's."""
    from kalshi_analytics.api.app import create_app

    url, eng = own_db
    await recorder_started(eng, datetime.now(UTC) - timedelta(days=2))
    async with eng.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO feed_gaps (key, detected_at, channel, cause, gap_start, gap_end, repaired_at) VALUES "
                "('ahead-1', now(), 'ticker', 'seq_jump', now() + interval '10 seconds', "
                "now() + interval '11 seconds', now())"
            )
        )
    app = create_app(make_settings(url), engine=eng)
    async with serve(app) as client:
        hours = (await client.get("/api/v1/recorder/status")).json()["gap_hours"]
    assert (hours[-1]["gaps_started"], hours[-1]["gaps_repaired"]) == (1, 1)
    assert sum(h["gaps_started"] for h in hours) == 1
    assert hours[-1]["seconds_in_gaps"] == 0  # none of it has happened yet, by the database's clock


async def test_hours_before_the_first_recorder_are_not_recorded_rather_than_covered(
    own_db: tuple[str, AsyncEngine],
) -> None:
    """A database a recorder first wrote 90 minutes ago has no gap in the day before, and no coverage either: those
    hours are null, the hour it started in counts from its start, and the day's share is over what was recorded."""
    from kalshi_analytics.api.app import create_app

    url, eng = own_db
    app = create_app(make_settings(url), engine=eng)
    async with serve(app) as client:
        nothing = (await client.get("/api/v1/recorder/status")).json()["gap_hours"]
        assert all(h["coverage"] is None and h["recorded_seconds"] == 0 for h in nothing)

        async with eng.connect() as conn:
            now = (await conn.execute(text("SELECT now()"))).scalar_one()
        started = now - timedelta(minutes=90)
        await recorder_started(eng, started)
        hours = (await client.get("/api/v1/recorder/status")).json()["gap_hours"]
    for h in hours:
        begin = datetime.fromisoformat(h["hour_start"])
        if begin + timedelta(hours=1) <= started:
            assert (h["coverage"], h["recorded_seconds"]) == (None, 0), h
        elif begin <= started:
            assert h["coverage"] == 1
            end = min(begin + timedelta(hours=1), now)
            assert abs(h["recorded_seconds"] - (end - started).total_seconds()) < 5
        else:
            assert h["coverage"] == 1
            assert h["recorded_seconds"] > 0
    assert sum(h["coverage"] is not None for h in hours) in (2, 3)  # 90 minutes touch two or three clock hours

    # A gap before the first recorder's start (its heartbeat row lost, say) means something was recording then.
    async with eng.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO feed_gaps (key, detected_at, channel, cause, gap_start, gap_end, repaired_at) VALUES "
                "('early-1', :s, 'ticker', 'seq_jump', :s, :e, :e)"
            ),
            {"s": started - timedelta(hours=4), "e": started - timedelta(hours=4) + timedelta(minutes=6)},
        )
    async with serve(create_app(make_settings(url), engine=eng)) as client:
        hours = (await client.get("/api/v1/recorder/status")).json()["gap_hours"]
    early = [h for h in hours if h["gaps_started"]]
    assert len(early) == 1
    assert early[0]["coverage"] is not None
    assert early[0]["coverage"] < 1


async def test_ready_reports_missing_migrations(fresh_database_url: str) -> None:
    from kalshi_analytics.api.app import create_app

    eng = create_engine(fresh_database_url, pool_size=1)
    try:
        app = create_app(make_settings(fresh_database_url), engine=eng)
        async with serve(app) as client:
            body = assert_problem(await client.get("/api/v1/ready"), 503)
        assert f"head is {migrations.head_revision()}" in str(body["detail"])
        assert body["checks"]["database"]["ok"] is True  # type: ignore[index]
    finally:
        await eng.dispose()


async def test_recorder_status_lists_recent_gaps(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    now = datetime.now(UTC)
    gap = GapOpened(
        key=f"gap-{t}",
        detected_at=now,
        channel="orderbook_delta",
        sid=1,
        market_ticker=t,
        cause="seq_jump",
        seq_expected=5,
        seq_received=9,
        gap_start=now + timedelta(days=3650),  # newest of all, so it is in the first 50
    )
    await write(engine, market(t), gap)
    status = (await client.get("/api/v1/recorder/status")).json()
    assert status["recent_gaps"][0]["market_ticker"] == t
    assert status["open_gaps"] >= 1


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/markets/NOPE-MET")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert 'kalshi_api_requests_total{method="GET",route="/api/v1/markets/{ticker}",status="404"}' in r.text


async def test_openapi_has_stable_operation_ids_and_summaries(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    ops = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    assert {
        "getHealth",
        "getReadiness",
        "listMarkets",
        "getMarket",
        "getLatestSnapshot",
        "getMarketHistory",
        "getOrderBook",
        "listTrades",
        "listMarketGaps",
        "streamMarketUpdates",
        "getRecorderStatus",
        "getMetrics",
        "createPaperSession",
        "listPaperSessions",
        "getPaperSession",
        "stopPaperSession",
        "getStrategyPerformance",
    } <= ops.keys()
    assert all(op.get("summary") for op in ops.values())
