"""Comparing backtests in a real browser against the real stack (simulator → recorder → database → the API serving
the build, its backtest worker on): two runs over what the recorder just wrote, ticked in the list and compared —
their P&L curves overlaid on one chart, their metrics side by side — and a run's page with its calibration and the
feed gaps of its window. No console error and no failed request. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import wait_until
from tests.e2e.browser import Watch
from tests.e2e.test_dashboard_browser import ARTIFACTS, CHROMIUM, _a_traded_market, _preconditions, stack

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


async def _two_runs(base: str, ticker: str) -> list[str]:
    """Two finished backtests of different strategies over the last minutes of ``ticker``."""
    now = datetime.now(UTC)
    window = {"start": (now - timedelta(minutes=20)).isoformat(), "end": (now + timedelta(minutes=5)).isoformat()}
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for strategy, params in (("buy_and_hold", {"size": 5}), ("buy_and_hold", {"size": 2, "side": "no"})):
            body = {"strategy": strategy, "params": params, "market_filter": {"tickers": [ticker]}, **window}
            r = await client.post("/api/v1/backtests", json=body)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])

        async def done() -> bool:
            runs = [(await client.get(f"/api/v1/backtests/{i}")).json() for i in ids]
            assert all(r["status"] != "failed" for r in runs), runs
            return all(r["status"] == "done" for r in runs)

        await wait_until(done, "both backtests to finish", seconds=60, interval=0.3)
    return ids


async def test_compare_two_backtests(own_db: tuple[str, AsyncEngine], tmp_path: Path) -> None:
    _preconditions()
    from playwright.async_api import async_playwright, expect

    url, engine = own_db
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with stack(url, engine, tmp_path) as base:
        ticker = await _a_traded_market(base)
        first, second = await _two_runs(base, ticker)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})

                watch = Watch(page)
                console_errors, failed = watch.errors, watch.failed

                # 1. The list: tick both runs; Compare is offered from two on.
                await page.goto(base + "/backtests")
                compare = page.get_by_role("link", name=re.compile(r"^Compare"))
                await expect(compare).to_have_attribute("aria-disabled", "true")
                await page.get_by_label(f"Compare {first[:8]}").check()
                await page.get_by_label(f"Compare {second[:8]}").check()
                await expect(compare).to_have_text("Compare 2 runs")
                await page.screenshot(path=str(ARTIFACTS / "backtests-picked.png"), full_page=True)
                await compare.click()
                await page.wait_for_url(re.compile(r".*/backtests/compare\?ids="))

                # 2. One chart with both curves, one column of metrics per run.
                chart = page.get_by_test_id("overlay-chart")
                await chart.locator("canvas").first.wait_for()
                await expect(chart).to_have_attribute("data-series", "2")
                points = [int(n) for n in (await chart.get_attribute("data-points") or "").split(",")]
                assert len(points) == 2, points
                assert min(points) >= 2, points
                table = page.get_by_test_id("compare-metrics")
                await expect(table.locator("thead th")).to_have_count(3)
                for run in (first, second):
                    await expect(table.locator(f'thead a[href="/backtests/{run}"]')).to_be_visible()
                pnl = table.locator("tbody tr").filter(has=page.locator("th", has_text=re.compile(r"^Total P&L$")))
                await expect(pnl.locator("td")).to_have_count(2)
                async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                    shown = {
                        r["id"]: r["total_pnl"]
                        for r in [(await client.get(f"/api/v1/backtests/{i}")).json() for i in (first, second)]
                    }
                # Each run's column shows its own total P&L (to the cent), in the order of the chart's legend.
                for i, run in enumerate((first, second)):
                    cents = abs(Decimal(shown[run])).quantize(Decimal("0.01"))
                    await expect(pnl.locator("td").nth(i)).to_contain_text(str(cents))
                await page.wait_for_timeout(500)
                await page.screenshot(path=str(ARTIFACTS / "backtests-compare.png"), full_page=True)

                # Aligned from each start instead: the same two curves, redrawn.
                await page.get_by_label("from each start").check()
                await expect(chart).to_have_attribute("data-series", "2")
                await chart.locator("canvas").first.wait_for()

                # Narrow, the comparison stacks: the chart takes the width, the metrics table scrolls in its panel.
                await page.set_viewport_size({"width": 420, "height": 900})
                await page.wait_for_timeout(500)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 420, f"the comparison scrolls sideways at 420 px ({width} px wide)"
                await page.screenshot(path=str(ARTIFACTS / "backtests-compare-narrow.png"), full_page=True)
                await page.set_viewport_size({"width": 1280, "height": 900})

                # 3. Removing a run leaves one: the page asks for two.
                await page.get_by_role("button", name=f"Remove {second[:8]}").click()
                await page.get_by_text("Choose at least two runs to compare").wait_for()

                # 4. A run's page: its calibration (or why there is none) and the feed gaps of its window.
                await page.goto(f"{base}/backtests/{first}")
                await page.get_by_test_id("calibration").wait_for()
                await page.wait_for_timeout(500)
                await page.screenshot(path=str(ARTIFACTS / "backtest-calibration.png"), full_page=True)

                assert console_errors == [], console_errors
                assert failed == [], failed
            finally:
                await browser.close()
