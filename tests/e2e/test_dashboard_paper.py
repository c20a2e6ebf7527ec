"""The dashboard's paper trading in a real browser against the real stack (simulator → recorder → database, a live
runner, the API serving the build): start a session from the form generated from the strategy's parameter schema
(an invalid capital shows the API's field error next to its field), watch its page — fed by one snapshot and then
the live stream — show the strategy's fill, position, cards and events; run the divergence report, see the
decision gate, and stop the session. No console error and no failed request. Screenshots go to
``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.browser import Watch
from tests.e2e.test_dashboard_browser import ARTIFACTS, CHROMIUM, _a_traded_market, _preconditions, stack
from tests.live.test_endpoints import live_runner

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def test_start_a_paper_session_see_its_fill_live_and_stop_it(
    own_db: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    _preconditions()
    from playwright.async_api import async_playwright, expect

    url, engine = own_db
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with stack(url, engine, tmp_path) as base, live_runner(engine):
        ticker = await _a_traded_market(base)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})

                watch = Watch(page)
                console_errors, failed = watch.errors, watch.failed
                reads: list[str] = []  # the session's REST reads (everything else comes over the stream)
                page.on("request", lambda r: reads.append(r.url) if "/api/v1/paper-sessions/" in r.url else None)

                # 1. The list, empty in its designed state; the form, generated from the strategy's schema.
                await page.goto(base + "/")
                await page.get_by_role("navigation", name="Main").get_by_role("link", name="Paper trading").click()
                await page.wait_for_url("**/paper")
                await page.get_by_text("No paper session yet").wait_for()
                await page.get_by_role("button", name="New session").click()
                form = page.get_by_role("form", name="New paper session")
                await form.get_by_label("Strategy", exact=True).select_option("buy_and_hold")
                await expect(form.get_by_label("Size", exact=True)).to_have_value("10")
                await form.get_by_label("Size", exact=True).fill("3")
                await form.get_by_label("Market filter", exact=True).fill(ticker)
                await form.get_by_label("Session name", exact=True).fill("e2e paper")
                await form.get_by_label("Equity sample interval (s)", exact=True).fill("1")

                # 2. A capital finer than the API keeps: its 422 is shown next to the capital field.
                capital = form.get_by_label("Initial capital ($)", exact=True)
                await capital.fill("100.000001")
                async with page.expect_response(
                    lambda r: r.url.endswith("/api/v1/paper-sessions") and r.request.method == "POST"
                ) as answer:
                    await form.get_by_role("button", name="Start session").click()
                rejected = await answer.value
                assert rejected.status == 422
                problem = await rejected.json()
                assert [e["field"] for e in problem["errors"]] == ["body.initial_capital"], problem
                row = form.locator(".field").filter(has=page.get_by_label("Initial capital ($)", exact=True))
                await expect(row.locator(".field-error")).to_have_text(problem["errors"][0]["message"])
                await expect(capital).to_have_attribute("aria-invalid", "true")
                await page.screenshot(path=str(ARTIFACTS / "paper-field-error.png"), full_page=True)
                console_errors[:] = [e for e in console_errors if "422" not in e]

                # 3. Corrected, the session starts and the page moves to it, live over the stream.
                await capital.fill("100")
                await form.get_by_role("button", name="Start session").click()
                await page.wait_for_url(re.compile(rf".*/paper/{UUID}$"))
                sid = page.url.rsplit("/", 1)[1]
                session = page.get_by_test_id("session")
                await expect(session).to_have_attribute("data-status", "running")
                await page.get_by_test_id("stream-state").filter(has_text="live").wait_for(timeout=15_000)
                await expect(page.get_by_test_id("session-events")).to_contain_text("started")
                await page.screenshot(path=str(ARTIFACTS / "paper-session-started.png"), full_page=True)

                # 4. The runner fills buy-and-hold at the next ask it sees: the fill, the position and the cards
                #    arrive over the stream (no polling), as one instant.
                fills = page.get_by_test_id("fills")
                await expect(fills.locator("tbody tr")).to_have_count(1, timeout=90_000)
                await expect(fills.locator("tbody tr").first).to_contain_text(ticker)
                await expect(fills.locator("tbody tr").first).to_contain_text("buy YES")
                positions = page.get_by_test_id("positions")
                await expect(positions.locator("tbody tr")).to_have_count(1)
                cards = page.get_by_test_id("session-cards")
                await expect(page.get_by_test_id("fill-count")).to_contain_text("1")
                await expect(cards.locator(".card").filter(has_text="Open positions")).to_contain_text("1")
                await page.get_by_test_id("equity-chart").locator("canvas").first.wait_for(timeout=30_000)
                async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                    api_fills = (await client.get(f"/api/v1/paper-sessions/{sid}/fills")).json()["items"]
                assert [(f["ticker"], f["action"], Decimal(f["count"])) for f in api_fills] == [(ticker, "buy", 3)]
                await page.wait_for_timeout(500)  # the chart paints on the next frame
                await page.screenshot(path=str(ARTIFACTS / "paper-session.png"), full_page=True)
                # One snapshot was read; the fill, position, equity and cards came over the stream, not by polling.
                mine = [u for u in reads if f"/paper-sessions/{sid}" in u]
                assert [u.split(sid, 1)[1].split("?")[0] for u in mine] == ["/live"], mine

                # 5. The decision gate (no backtest of buy_and_hold in this database) and the divergence report.
                await expect(page.get_by_test_id("gate-verdict")).to_have_attribute("data-passed", "false")
                await expect(page.get_by_test_id("gate-verdict")).to_contain_text("no finished backtest")
                await page.get_by_role("button", name="Compare with a backtest").click()
                verdict = page.get_by_test_id("divergence-verdict")
                await verdict.wait_for(timeout=60_000)
                assert await verdict.get_attribute("data-match") in ("true", "false")

                # 6. Stop: the button goes, the status and the events say so.
                await page.get_by_role("button", name="Stop session").click()
                await expect(session).to_have_attribute("data-status", "stopped", timeout=15_000)
                await expect(page.get_by_role("button", name="Stop session")).to_have_count(0)
                await expect(page.get_by_test_id("session-events").locator("li").first).to_contain_text("stopped")
                await page.wait_for_timeout(300)
                await page.screenshot(path=str(ARTIFACTS / "paper-session-stopped.png"), full_page=True)

                # 7. The list shows it stopped, with its fill; narrow, the session page stacks without sideways scroll.
                await page.get_by_role("link", name="Paper trading").first.click()
                listed = page.locator("table.data tbody tr").filter(has_text="e2e paper")
                await expect(listed.locator(".status")).to_have_text("stopped", timeout=15_000)
                await page.screenshot(path=str(ARTIFACTS / "paper-sessions.png"), full_page=True)
                await page.set_viewport_size({"width": 420, "height": 900})
                await listed.get_by_role("link").click()
                await page.get_by_test_id("fills").wait_for()
                await page.wait_for_timeout(500)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 420, f"the session page scrolls sideways at 420 px ({width} px wide)"
                await page.screenshot(path=str(ARTIFACTS / "paper-session-narrow.png"), full_page=True)

                assert console_errors == [], console_errors
                assert failed == [], failed

                await page.goto(base + "/paper/00000000-0000-4000-8000-000000000000")
                await page.get_by_test_id("not-found").wait_for()
                unexpected = [e for e in console_errors if "404" not in e]
                assert unexpected == [], unexpected
            finally:
                await browser.close()
