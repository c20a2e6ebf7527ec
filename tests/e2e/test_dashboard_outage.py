"""The API really going away under an open dashboard: ``kalshi-analytics api`` as its own process is stopped with
SIGTERM while a market page is live, then started again on the same port. The page says the API is unreachable
(a banner, the stream marked offline), keeps what it showed, and recovers by itself when the API is back: the
banner goes, the stream is live again and ticks move the chart again — no reload, no uncaught error.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.e2e.test_dashboard_browser import ARTIFACTS, CHROMIUM, DIST, _a_traded_market, _preconditions
from tests.recorder.conftest import fast_config, sim_settings

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_process(url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``kalshi-analytics api`` on 127.0.0.1:``port`` serving the build; stopped (SIGTERM) on exit if running."""
    env = {
        **os.environ,
        "DB_URL": url,
        "API_DASHBOARD_DIR": str(DIST),
        "API_STREAM_HEARTBEAT_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "kalshi_analytics", "api", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


async def _healthy(base: str) -> None:
    async def up() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(base + "/api/v1/ready")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(up, "the API process to answer /ready", seconds=30, interval=0.2)


async def test_the_api_going_away_shows_a_banner_and_the_page_recovers_by_itself(
    own_db: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    _preconditions()
    from playwright.async_api import async_playwright

    url, engine = own_db
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    sim_cfg = SimulatorConfig(seed=11, markets=6, speed=5, port=0, rate_limit=None, activity=3.0)
    async with run_simulator(sim_cfg) as sim:
        service = RecorderService(engine, sim_settings(sim), fast_config(tmp_path))
        stop = asyncio.Event()
        recorder = asyncio.create_task(service.run(stop))
        try:
            await asyncio.wait_for(service.ready.wait(), 30)
            with api_process(url, port) as first:
                await _healthy(base)
                ticker = await _a_traded_market(base)
                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                    try:
                        page = await browser.new_page(viewport={"width": 1280, "height": 860})
                        page_errors: list[str] = []
                        page.on("pageerror", lambda e: page_errors.append(str(e)))
                        await page.goto(f"{base}/markets/{ticker}")
                        chart = page.get_by_test_id("candle-chart")
                        await chart.locator("canvas").first.wait_for()
                        pill = page.get_by_test_id("stream-state")
                        await pill.filter(has_text="live").wait_for(timeout=15_000)
                        title = await page.get_by_role("heading", level=1).inner_text()

                        # The API process stops (as on a deploy or a crash): a banner, the stream offline.
                        first.send_signal(signal.SIGTERM)
                        # Stops promptly although the page holds a stream (uvicorn re-raises the signal it stopped on).
                        assert first.wait(15) in (0, -signal.SIGTERM)
                        banner = page.get_by_role("alert").filter(has_text="The API is unreachable")
                        await banner.wait_for(timeout=15_000)
                        await pill.filter(has_text="live").wait_for(state="detached", timeout=10_000)
                        # What it showed stays on screen, marked as possibly out of date.
                        assert await page.get_by_role("heading", level=1).inner_text() == title
                        assert await chart.locator("canvas").count() > 0
                        await page.screenshot(path=str(ARTIFACTS / "api-outage.png"), full_page=True)

                        # Back on the same port: everything resumes by itself, no reload.
                        with api_process(url, port):
                            await _healthy(base)
                            await banner.wait_for(state="detached", timeout=15_000)
                            await pill.filter(has_text="live").wait_for(timeout=20_000)
                            before = int(await chart.get_attribute("data-live-updates") or "0")
                            await page.wait_for_function(
                                "n => Number(document.querySelector('[data-testid=candle-chart]')"
                                ".dataset.liveUpdates) > n",
                                arg=before,
                                timeout=30_000,
                            )
                            await page.screenshot(path=str(ARTIFACTS / "api-recovered.png"), full_page=True)
                        assert page_errors == [], page_errors
                    finally:
                        await browser.close()
        finally:
            stop.set()
            await asyncio.wait_for(recorder, 30)
