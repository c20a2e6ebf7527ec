"""Property-based fuzzing of the OpenAPI document (schemathesis) against the real app on real PostgreSQL.

Whatever the inputs: no 5xx, and every error body has the problem+json shape. The app runs under uvicorn in a
thread with its own event loop and engine (so nothing crosses the test session's loop); the stream is
excluded because it never ends. ``POST /backtests`` is fuzzed with the backtest worker off (random windows over
the whole shared database would be heavy runs); the backtests it queued are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text

from kalshi_analytics.api.app import create_app
from kalshi_analytics.db.engine import create_engine
from tests.fixtures.app import PROBLEM_KEYS, make_settings


@pytest.fixture(scope="module")
def api_url(database_url: str) -> Iterator[str]:
    app = create_app(make_settings(database_url, api_backtest_worker=False))
    started = asyncio.run(_queued_backtests(database_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "API server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    asyncio.run(_queued_backtests(database_url, delete_after=started))


async def _queued_backtests(database_url: str, delete_after: Any = None) -> Any:
    """The database clock now; with ``delete_after``, first delete the backtests queued since then."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            if delete_after is not None:
                await conn.execute(
                    text("DELETE FROM backtest_results WHERE status = 'queued' AND created_at >= :t"),
                    {"t": delete_after},
                )
            return (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
    finally:
        await engine.dispose()


def check(case: Any) -> None:
    response = case.call(timeout=10)
    documented_503 = case.path == "/api/v1/ready" and response.status_code == 503  # not ready: its job
    assert response.status_code < 500 or documented_503, (
        f"{case.method} {case.formatted_path} {case.query}: {response.text[:500]}"
    )
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json")
        body = response.json()
        assert body.keys() >= PROBLEM_KEYS, body
        assert body["status"] == response.status_code


def test_fuzz_no_server_errors_and_problem_bodies(api_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/api/v1/openapi.json")
    tested = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path == "/api/v1/stream":  # never ends; covered by test_stream.py
            continue

        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            check(case)

        run()
        tested.append(op.path)
    assert len(tested) >= 10
