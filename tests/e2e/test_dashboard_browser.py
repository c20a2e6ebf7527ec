"""The dashboard in a real browser against the real stack: the simulator, the recorder writing into a database of
the test's own, and the API serving the built dashboard on a loopback port. Debian's Chromium (``/usr/bin/chromium``,
installed by ``.ci/run``) is driven by Playwright; no browser is ever downloaded.

Browse the markets, open one, see its candles drawn and a live tick arrive over the stream, the order book as
ladders, an unknown market's not-found page — with no console error and no failed request. Screenshots of each
page go to ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import create_app
from kalshi_analytics.recorder.rows import GapOpened, GapRepaired
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import Simulator, SimulatorConfig, run_simulator
from tests.conftest import REPO_ROOT, wait_until
from tests.e2e.browser import Watch
from tests.fixtures.app import make_settings, write
from tests.markets.conftest import running_api
from tests.recorder.conftest import fast_config, sim_settings

if TYPE_CHECKING:
    from playwright.async_api import Locator

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

CHROMIUM = Path(os.environ.get("KA_CHROMIUM", "/usr/bin/chromium"))
DIST = REPO_ROOT / "frontend" / "dist"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


def _preconditions() -> None:
    """Skip (a developer's machine) or fail (CI, where .ci/run installs both) without a browser or a build."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    if not (DIST / "index.html").is_file():
        missing.append("the dashboard is not built (cd frontend && npm ci && npm run build)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail("; ".join(missing) + " — .ci/run provides both", pytrace=False)
        pytest.skip("; ".join(missing))


@asynccontextmanager
async def stack(url: str, engine: AsyncEngine, tmp: Path) -> AsyncIterator[str]:
    """Simulator + recorder + API serving the build; yields the API's base URL once some market has a price
    and an order book recorded."""
    async with stack_and_simulator(url, engine, tmp) as (base, _sim):
        yield base


@asynccontextmanager
async def stack_and_simulator(url: str, engine: AsyncEngine, tmp: Path) -> AsyncIterator[tuple[str, Simulator]]:
    """:func:`stack`, with the simulator (to inject faults)."""
    sim_cfg = SimulatorConfig(seed=7, markets=8, speed=5, port=0, rate_limit=None, activity=3.0)
    async with run_simulator(sim_cfg) as sim:
        service = RecorderService(engine, sim_settings(sim), fast_config(tmp))
        stop = asyncio.Event()
        recorder = asyncio.create_task(service.run(stop))
        try:
            await asyncio.wait_for(service.ready.wait(), 30)
            settings = make_settings(url, api_dashboard=True, api_dashboard_dir=DIST, api_stream_heartbeat_seconds=1)
            app = create_app(settings, engine=engine)
            async with running_api(app) as base:
                yield base, sim
        finally:
            stop.set()
            await asyncio.wait_for(recorder, 30)


async def _a_traded_market(base: str) -> str:
    """An open market with a probability and an order book recorded (so its page has everything to show)."""
    chosen: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def found() -> bool:
            r = await client.get("/api/v1/markets", params={"status": "open", "sort": "volume", "order": "desc"})
            for m in r.json()["items"]:
                if m["implied_probability"] is None:
                    continue
                book = await client.get(f"/api/v1/markets/{m['ticker']}/orderbook")
                if book.status_code == 200 and book.json()["yes"] and book.json()["no"]:
                    chosen.append(m["ticker"])
                    return True
            return False

        await wait_until(found, "a market with a price and a two-sided book", seconds=45, interval=0.5)
    return chosen[0]


async def _open_gaps(legend: Locator) -> int:
    """The legend's count of open gaps ("…, 2 open"), 0 when it names none."""
    found = re.search(r"(\d+) open", await legend.inner_text())
    return int(found.group(1)) if found else 0


async def test_browse_markets_open_one_and_see_it_live(own_db: tuple[str, AsyncEngine], tmp_path: Path) -> None:
    _preconditions()
    from playwright.async_api import Route, async_playwright

    url, engine = own_db
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # shared with the other browser tests: each overwrites its own
    async with stack_and_simulator(url, engine, tmp_path) as (base, sim):
        ticker = await _a_traded_market(base)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 860}, timezone_id="America/New_York")

                watch = Watch(page)
                console_errors, failed = watch.errors, watch.failed

                # 1. Markets: a table of what the recorder has seen, filtered by the search box.
                await page.goto(base + "/")
                await page.get_by_role("heading", name="Markets").wait_for()
                link = page.locator(f'a[href="/markets/{ticker}"]')
                await link.wait_for()
                rows = await page.locator("table.markets tbody tr").count()
                assert rows >= 2, "the markets table shows the recorded markets"
                await page.screenshot(path=str(ARTIFACTS / "markets.png"), full_page=True)
                await page.get_by_label("Search markets").fill(ticker)
                await page.wait_for_function("document.querySelectorAll('table.markets tbody tr').length === 1")
                await page.get_by_label("Search markets").fill("")

                # 2. A market: its candles drawn, then moved by live snapshots from the stream.
                await link.click()
                await page.wait_for_url(f"**/markets/{ticker}")
                chart = page.get_by_test_id("candle-chart")
                await chart.locator("canvas").first.wait_for()
                await page.get_by_test_id("stream-state").filter(has_text="live").wait_for(timeout=15_000)
                before = int(await chart.get_attribute("data-live-updates") or "0")
                await page.wait_for_function(
                    "n => Number(document.querySelector('[data-testid=candle-chart]').dataset.liveUpdates) > n",
                    arg=before,
                    timeout=30_000,
                )
                bars = int(await chart.get_attribute("data-bars") or "0")
                live = int(await chart.get_attribute("data-live-updates") or "0")
                assert bars + live > 0, "the chart has candles to show"
                await page.get_by_role("region", name="YES ladder").locator("tr").first.wait_for()
                assert await page.get_by_role("region", name="NO ladder").locator("tr").count() > 0

                # The YES depth chart of the same book, and the trades tape (REST page, then live trades).
                depth = page.get_by_test_id("depth-chart")
                await depth.wait_for()
                assert int(await depth.get_attribute("data-bids") or "0") > 0
                assert int(await depth.get_attribute("data-asks") or "0") > 0
                await page.get_by_test_id("trades-tape").locator("tbody tr").first.wait_for(timeout=30_000)
                facts = page.get_by_test_id("market-facts")
                await facts.get_by_text("Recorded from").wait_for()
                assert await facts.locator("time").count() >= 3, "open/close, recorded from/to, last update"
                # The exchange's resolution rules, as the simulator lists them (Kalshi's rules_primary).
                assert "resolves to Yes" in await page.get_by_test_id("market-rules").inner_text()

                # The simulator drops WebSocket frames: the recorder sees the sequence jump, records a feed gap
                # (of a whole subscription: every market's), and the page shades it as the stream tells it.
                assert await chart.get_attribute("data-gap-buckets") == "0"
                sim.set_faults(ws_drop_fraction=0.5)
                try:
                    await page.wait_for_function(
                        "() => Number(document.querySelector('[data-testid=candle-chart]').dataset.gapBuckets) >= 1",
                        timeout=20_000,
                    )
                finally:
                    sim.reset_faults()
                await page.wait_for_timeout(500)
                await page.screenshot(path=str(ARTIFACTS / "market-gap.png"), full_page=True)

                # A feed gap opened on this market reaches the page over the stream and is shaded; its repair too.
                gap = GapOpened(
                    key=uuid.uuid4().hex,
                    detected_at=datetime.now(UTC),
                    channel="ticker",
                    sid=None,
                    market_ticker=ticker,
                    cause="seq_jump",
                    seq_expected=None,
                    seq_received=None,
                    gap_start=datetime.now(UTC) - timedelta(minutes=3),
                )
                await write(engine, gap)
                await page.wait_for_function(
                    "() => Number(document.querySelector('[data-testid=candle-chart]').dataset.gapBuckets) >= 3",
                    timeout=15_000,
                )
                legend = page.get_by_test_id("gap-legend")
                await legend.filter(has_text=re.compile(r", [1-9]\d* open")).wait_for()
                open_before = await _open_gaps(legend)
                await write(engine, GapRepaired(gap.key, datetime.now(UTC), datetime.now(UTC), "get_snapshot"))
                await page.wait_for_function(
                    "n => { const legend = document.querySelector('[data-testid=gap-legend]');"
                    " const m = legend.textContent.match(/(\\d+) open/); return (m ? Number(m[1]) : 0) < n; }",
                    arg=open_before,
                    timeout=15_000,
                )
                assert int(await chart.get_attribute("data-gap-buckets") or "0") >= 3

                await page.wait_for_timeout(500)  # the chart paints on the next frame
                await page.screenshot(path=str(ARTIFACTS / "market.png"), full_page=True)

                # Another interval: the history of 5-minute candles replaces the 1-minute one, and live ticks go on.
                await page.get_by_role("group", name="Candle interval").get_by_role("button", name="5m").click()
                await page.get_by_role("heading", name="Price · 5m candles").wait_for()
                await chart.wait_for()
                await page.wait_for_function(
                    "() => { const c = document.querySelector('[data-testid=candle-chart]');"
                    " return c && Number(c.dataset.bars) + Number(c.dataset.liveUpdates) > 0; }",
                    timeout=15_000,
                )
                assert await page.get_by_role("button", name="5m").get_attribute("aria-pressed") == "true"
                bars_5m = int(await chart.get_attribute("data-bars") or "0")
                assert bars_5m <= max(bars, 1), "5-minute buckets are no more than 1-minute ones"
                await page.get_by_role("group", name="Candle interval").get_by_role("button", name="1h").click()
                await page.get_by_role("heading", name="Price · 1h candles").wait_for()
                await page.wait_for_timeout(500)
                await page.screenshot(path=str(ARTIFACTS / "market-1h.png"), full_page=True)

                # On a narrow window the market page stacks: chart, book, depth, tape and facts take the width.
                await page.set_viewport_size({"width": 420, "height": 900})
                await page.wait_for_timeout(500)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 420, f"the market page scrolls sideways at 420 px ({width} px wide)"
                await page.screenshot(path=str(ARTIFACTS / "market-narrow.png"), full_page=True)
                await page.set_viewport_size({"width": 1280, "height": 860})

                # 3. Paper trading: the list (empty: no session runs in this stack) in its designed state.
                await page.get_by_role("link", name="Paper trading").click()
                await page.get_by_text("No paper session yet").wait_for()
                await page.screenshot(path=str(ARTIFACTS / "paper.png"), full_page=True)

                assert console_errors == [], console_errors
                assert failed == [], failed

                # 4. The API goes away (every request to it fails): a banner says so, and goes by itself when the
                # API is back. (After the checks above: the refused requests are this step's doing.)
                async def refuse(route: Route) -> None:
                    await route.abort("connectionrefused")

                await page.goto(base + f"/markets/{ticker}")
                await chart.locator("canvas").first.wait_for()
                await page.route("**/api/v1/**", refuse)
                banner = page.get_by_role("alert").filter(has_text="The API is unreachable")
                await banner.wait_for(timeout=15_000)
                await page.screenshot(path=str(ARTIFACTS / "api-unreachable.png"))
                await page.unroute("**/api/v1/**", refuse)
                await banner.wait_for(state="detached", timeout=10_000)
                console_errors.clear()
                failed.clear()

                # 5. An unknown market: the not-found page (its one 404 is the answer that says so).
                await page.goto(base + "/markets/NO-SUCH-MARKET")
                await page.get_by_test_id("not-found").wait_for()
                await page.screenshot(path=str(ARTIFACTS / "not-found.png"), full_page=True)
                unexpected = [e for e in console_errors if "404" not in e]
                assert unexpected == [], unexpected
                assert failed == [], failed
            finally:
                await browser.close()
