"""``kalshi-analytics api``: the real command, two uvicorn workers, on the test database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import serve_api
from kalshi_analytics.config import SettingsError, load_settings
from tests.conftest import free_port
from tests.fixtures.app import make_settings


def test_api_command_serves_with_two_workers(database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "DB_URL": database_url, "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalshi_analytics", "api", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/markets", params={"limit": 1}, timeout=5)
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/docs", timeout=5).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    # The banner gives the URLs that answer.
    assert f"docs:       http://127.0.0.1:{port}/api/v1/docs" in out.decode()


def test_bad_rate_limit_setting_is_one_line() -> None:
    with pytest.raises(SettingsError, match="API_RATE_READ: must look like 1200/minute"):
        load_settings(_env_file=None, api_rate_read="lots")


async def test_serve_api_runs_in_this_loop_and_stops_on_cancel(database_url: str, engine: AsyncEngine) -> None:
    port = free_port()
    task = asyncio.create_task(serve_api(make_settings(database_url), engine, "127.0.0.1", port))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
        for _ in range(200):
            try:
                if (await client.get("/api/v1/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        assert (await client.get("/api/v1/markets", params={"limit": 1})).status_code == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The engine belongs to the caller: still usable.
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
