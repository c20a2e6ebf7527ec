"""The dashboard's backtests in a real browser against the real stack (simulator → recorder → database → the API
serving the build, its backtest worker on): start a backtest from the form generated from the strategy's
parameter schema on what the recorder just wrote, and see its equity curve, drawdown and executions; an invalid
parameter shows the API's field error next to its field; an unknown run is a not-found page. No console error
and no failed request. Screenshots go to ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.browser import Watch
from tests.e2e.test_dashboard_browser import ARTIFACTS, CHROMIUM, _a_traded_market, _preconditions, stack

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

ZONE = "Europe/Berlin"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _local_input(ts: datetime) -> str:
    """``ts`` as a datetime-local input holds it in the page's zone (to the minute)."""
    return ts.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


async def test_start_a_backtest_from_the_form_and_see_its_equity(
    own_db: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    _preconditions()
    from playwright.async_api import async_playwright, expect

    url, engine = own_db
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with stack(url, engine, tmp_path) as base:
        ticker = await _a_traded_market(base)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id=ZONE)

                watch = Watch(page)
                console_errors, failed = watch.errors, watch.failed

                # 1. The list, empty in its designed state; reached by the navigation.
                await page.goto(base + "/")
                await page.get_by_role("navigation", name="Main").get_by_role("link", name="Backtests").click()
                await page.wait_for_url("**/backtests")
                await page.get_by_text("No backtest yet").wait_for()

                # 2. The form, generated from the chosen strategy's params_schema: its fields and their defaults.
                await page.get_by_role("button", name="New backtest").click()
                form = page.get_by_role("form", name="New backtest")
                await form.get_by_label("Strategy", exact=True).select_option("momentum")
                await expect(form.get_by_label("Lookback", exact=True)).to_have_value("10")
                await expect(form.get_by_label("Threshold", exact=True)).to_have_value("0.1")
                await expect(form.get_by_label("Hold", exact=True)).to_have_value("30")
                await form.get_by_label("Strategy", exact=True).select_option("buy_and_hold")
                await expect(form.get_by_label("Side", exact=True)).to_have_value("yes")
                size = form.get_by_label("Size", exact=True)
                await expect(size).to_have_value("10")
                now = datetime.now(UTC)
                await form.get_by_label("Start", exact=True).fill(_local_input(now - timedelta(minutes=20)))
                await form.get_by_label("End", exact=True).fill(_local_input(now + timedelta(minutes=20)))
                await form.get_by_label("Filter by", exact=True).select_option("tickers")
                await form.get_by_label("Market filter", exact=True).fill(ticker)

                # 3. An invalid parameter: the API's 422 names body.params.size, shown next to the Size field.
                await size.fill("-5")
                async with page.expect_response(
                    lambda r: r.url.endswith("/api/v1/backtests") and r.request.method == "POST"
                ) as answer:
                    await form.get_by_role("button", name="Run backtest").click()
                rejected = await answer.value
                assert rejected.status == 422
                problem = await rejected.json()
                assert [e["field"] for e in problem["errors"]] == ["body.params.size"], problem
                size_row = form.locator(".field").filter(has=page.get_by_label("Size", exact=True))
                error = size_row.locator(".field-error")
                await expect(error).to_have_text(problem["errors"][0]["message"])
                await expect(size).to_have_attribute("aria-invalid", "true")
                assert await form.locator(".field-error").count() == 1, "only the field at fault is marked"
                await page.screenshot(path=str(ARTIFACTS / "backtest-field-error.png"), full_page=True)
                # The 422 is the answer under test: the browser logs it as a failed resource load.
                console_errors[:] = [e for e in console_errors if "422" not in e]

                # 4. Corrected, the run starts and the page moves to it; it is run by the API's worker.
                await size.fill("5")
                await form.get_by_role("button", name="Run backtest").click()
                await page.wait_for_url(re.compile(rf".*/backtests/{UUID}$"))
                run = page.get_by_test_id("backtest")
                await expect(run).to_have_attribute("data-status", "done", timeout=60_000)
                equity = page.get_by_test_id("equity-chart")
                await equity.locator("canvas").first.wait_for()
                assert int(await equity.get_attribute("data-points") or "0") >= 2, "an equity curve is drawn"
                drawdown = page.get_by_test_id("drawdown-chart")
                await drawdown.locator("canvas").first.wait_for()
                assert float(await drawdown.get_attribute("data-min") or "1") <= 0
                cards = page.get_by_test_id("metric-cards")
                await expect(cards.locator(".card").filter(has_text="Total P&L")).to_be_visible()
                await expect(cards.locator(".card").filter(has_text="Max drawdown")).to_be_visible()
                # buy_and_hold enters at the first ask: one execution, linked to its market's page (marked there).
                run_id = page.url.rsplit("/", 1)[1]
                execution_link = page.locator(f'table.executions a[href="/markets/{ticker}?backtest={run_id}"]').first
                await expect(execution_link).to_be_visible()
                async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                    detail = (await client.get(f"/api/v1/backtests/{run_id}")).json()
                assert detail["params"] == {"side": "yes", "size": 5.0}
                assert detail["market_filter"]["tickers"] == [ticker]
                # A Sharpe ratio annualised from minutes of data says so under its value.
                sharpe_note = cards.locator(".card").filter(has_text="Sharpe").locator(".card-note")
                if detail["metrics"]["sharpe"] is None:
                    await expect(sharpe_note).to_have_count(0)
                else:
                    short = re.compile(r"^from \d+ min.* of data: too short to annualise$")
                    await expect(sharpe_note).to_have_text(short)
                await page.wait_for_timeout(500)  # the charts paint on the next frame
                await page.screenshot(path=str(ARTIFACTS / "backtest.png"), full_page=True)

                # The execution's link: the market's chart over the run's window, its entry marked on a candle.
                await execution_link.click()
                await page.wait_for_url(f"**/markets/{ticker}?backtest={run_id}")
                candles = page.get_by_test_id("candle-chart")
                await candles.locator("canvas").first.wait_for()
                await expect(candles).not_to_have_attribute("data-marks", "0", timeout=15_000)
                await expect(page.get_by_test_id("gap-legend")).to_contain_text("backtest marks")
                await page.wait_for_timeout(500)
                await page.screenshot(path=str(ARTIFACTS / "market-backtest.png"), full_page=True)

                # 5. The list: the run, done, with its key metrics; its id leads back to it.
                await page.get_by_role("link", name="Backtests").first.click()
                row = page.locator("table.backtests tbody tr").filter(has_text=run_id[:8])
                await expect(row.locator(".status")).to_have_text("done")
                await expect(row.locator("td.num").first).not_to_have_text("—")  # total P&L
                await page.screenshot(path=str(ARTIFACTS / "backtests.png"), full_page=True)

                # On a narrow window the run's page stacks: cards wrap, charts take the width, tables scroll.
                await page.set_viewport_size({"width": 420, "height": 900})
                await row.get_by_role("link").click()
                await page.get_by_test_id("equity-chart").locator("canvas").first.wait_for()
                await page.wait_for_timeout(500)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 420, f"the page scrolls sideways at 420 px ({width} px wide)"
                await page.screenshot(path=str(ARTIFACTS / "backtest-narrow.png"), full_page=True)
                await page.set_viewport_size({"width": 1280, "height": 900})

                assert console_errors == [], console_errors
                assert failed == [], failed

                # 6. Unknown runs: a not-found page, for a well-formed id (the API's 404) or a malformed one.
                await page.goto(base + "/backtests/00000000-0000-4000-8000-000000000000")
                await page.get_by_test_id("not-found").wait_for()
                await page.screenshot(path=str(ARTIFACTS / "backtest-not-found.png"), full_page=True)
                await page.goto(base + "/backtests/not-a-run")
                await page.get_by_test_id("not-found").wait_for()
                unexpected = [e for e in console_errors if "404" not in e]
                assert unexpected == [], unexpected
                assert failed == [], failed
            finally:
                await browser.close()
