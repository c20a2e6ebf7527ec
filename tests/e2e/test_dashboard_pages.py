"""The markets list and the recorder health page in a real browser against the real stack (simulator → recorder →
database → API serving the build; Debian's Chromium driven by Playwright, no browser downloaded).

Markets: search, filter and sort change the rows and the URL, the URL alone reproduces the view, the rows on screen
go live over the stream. Health: the leader and a standby, their heartbeats, messages/s, and the database going
away (the API's engine pointed at a closed port) shown, then recovered. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import create_app
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import Simulator, SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.e2e.browser import Watch
from tests.e2e.test_dashboard_browser import ARTIFACTS, CHROMIUM, DIST, _preconditions
from tests.fixtures.app import make_settings
from tests.markets.conftest import running_api
from tests.recorder.conftest import fast_config, sim_settings

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


@asynccontextmanager
async def stack(
    url: str, engine: AsyncEngine, tmp: Path, *, standby: bool = False
) -> AsyncIterator[tuple[str, FastAPI, Simulator]]:
    """Simulator + recorder (and, with ``standby``, a second recorder waiting for the lease) + the API serving the
    build; yields the API's base URL, the app and the simulator once the leader records."""
    sim_cfg = SimulatorConfig(seed=11, markets=24, speed=5, port=0, rate_limit=None, activity=3.0)
    async with run_simulator(sim_cfg) as sim:
        for sub in ("a", "b"):
            (tmp / sub).mkdir(exist_ok=True)
        config = fast_config(tmp / "a")
        services = [RecorderService(engine, sim_settings(sim), config)]
        if standby:
            services.append(
                RecorderService(engine, sim_settings(sim), fast_config(tmp / "b", lock_key=config.lock_key))
            )
        stop = asyncio.Event()
        tasks = [asyncio.create_task(services[0].run(stop))]
        try:
            await asyncio.wait_for(services[0].ready.wait(), 30)
            # The second starts once the first leads, so it is the one that waits.
            tasks += [asyncio.create_task(s.run(stop)) for s in services[1:]]
            settings = make_settings(url, api_dashboard=True, api_dashboard_dir=DIST, api_stream_heartbeat_seconds=1)
            app = create_app(settings, engine=engine)
            async with running_api(app) as base:
                yield base, app, sim
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def _listing(page: Any, action: Any, **params: str) -> list[dict[str, Any]]:
    """The items of the first page of the markets listing that ``action`` (a pending navigation or click) makes the
    page ask for, with ``params`` in its query."""

    def wanted(r: Any) -> bool:
        u = urlparse(r.url)
        query = {k: v[0] for k, v in parse_qs(u.query).items()}
        return (
            u.path == "/api/v1/markets" and "cursor" not in query and all(query.get(k) == v for k, v in params.items())
        )

    async with page.expect_response(wanted) as info:
        await action
    response = await info.value
    assert response.ok, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def _shows(page: Any, items: list[dict[str, Any]]) -> None:
    """The table's rows (those in the DOM: the first screenful and a few more) are the listing's, in its order."""
    from playwright.async_api import expect

    tickers = page.locator("table.markets tbody tr:not(.spacer) .ticker")
    await expect(tickers.first).to_have_text(items[0]["ticker"])
    n = await tickers.count()
    assert n >= min(len(items), 6)
    await expect(tickers).to_have_text([m["ticker"] for m in items[:n]])


def _search(page_url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page_url).query).items()}


async def _column(page: Any, n: int) -> list[str]:
    cells = page.locator(f"table.markets tbody tr:not(.spacer) td:nth-child({n})")
    return [t.strip() for t in await cells.all_inner_texts()]


async def _priced_markets(base: str, at_least: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def enough() -> bool:
            r = await client.get("/api/v1/markets", params={"status": "open", "limit": 1000})
            found[:] = [m for m in r.json()["items"] if m["implied_probability"] is not None]
            return len(found) >= at_least

        await wait_until(enough, f"{at_least} priced open markets", seconds=60, interval=0.5)
    return found


async def test_markets_search_filter_and_sort_live_in_the_url(own_db: tuple[str, AsyncEngine], tmp_path: Path) -> None:
    _preconditions()
    from playwright.async_api import async_playwright, expect

    url, engine = own_db
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with stack(url, engine, tmp_path) as (base, _app, _sim):
        priced = await _priced_markets(base, 6)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 860}, timezone_id="Europe/Paris")
                watch = Watch(page)

                # The default view: open markets by volume, the rows on screen live over the stream. Live quotes
                # move the values but never the rows: the rows stay in the order the API listed them.
                items = await _listing(page, page.goto(base + "/"), status="open", sort="volume", order="desc")
                await _shows(page, items)
                assert len(items) >= 6
                volumes = [float(m["volume"] or 0) for m in items]
                assert volumes == sorted(volumes, reverse=True), volumes
                await expect(page.get_by_test_id("markets-stream")).to_have_text("live", timeout=15_000)
                await page.wait_for_function(
                    "Number(document.querySelector('[data-live-updates]').dataset.liveUpdates) > 0"
                )
                await page.screenshot(path=str(ARTIFACTS / "markets-list.png"), full_page=True)

                # Sort by implied probability: highest first, then lowest first; unpriced markets last both ways.
                prob = page.get_by_role("button", name="Implied prob.")
                items = await _listing(page, prob.click(), sort="implied_probability", order="desc")
                await _shows(page, items)
                assert _search(page.url) == {"sort": "implied_probability"}
                await expect(page.get_by_role("columnheader", name="Implied prob.")).to_have_attribute(
                    "aria-sort", "descending"
                )
                probs = [m["implied_probability"] for m in items]
                priced_probs = [float(p) for p in probs if p is not None]
                assert priced_probs == sorted(priced_probs, reverse=True), probs
                assert probs[: len(priced_probs)] == [p for p in probs if p is not None], "unpriced markets come last"
                items = await _listing(page, prob.click(), sort="implied_probability", order="asc")
                await _shows(page, items)
                assert _search(page.url) == {"sort": "implied_probability", "order": "asc"}
                await expect(page.get_by_role("columnheader", name="Implied prob.")).to_have_attribute(
                    "aria-sort", "ascending"
                )
                probs = [m["implied_probability"] for m in items]
                priced_probs = [float(p) for p in probs if p is not None]
                assert priced_probs == sorted(priced_probs), probs
                assert probs[: len(priced_probs)] == [p for p in probs if p is not None], "unpriced markets come last"

                # Sort by the change over 24 h, biggest rise first.
                items = await _listing(page, page.get_by_role("button", name="24 h").click(), sort="change_24h")
                await _shows(page, items)
                assert _search(page.url) == {"sort": "change_24h"}
                await expect(page.get_by_role("columnheader", name="24 h")).to_have_attribute("aria-sort", "descending")
                changes = [float(m["change_24h"]) for m in items if m["change_24h"] is not None]
                assert changes, "the markets moved since they were first recorded"
                assert changes == sorted(changes, reverse=True), changes

                # Filter by a category: every row is of it.
                categories = sorted({m["category"] for m in priced if m["category"]})
                category = categories[0]
                items = await _listing(page, page.get_by_label("Category").select_option(category), category=category)
                await _shows(page, items)
                assert _search(page.url).get("category") == category
                assert {m["category"] for m in items} == {category}
                shown = await _column(page, 2)  # the category column
                assert shown, "rows of the category"
                assert set(shown) == {category}, shown

                # Search: the rows hold the words searched, whatever their case.
                target = next(m for m in priced if m["category"] == category)
                word = target["ticker"].split("-")[0].lower()
                items = await _listing(page, page.get_by_label("Search markets").fill(word), q=word, category=category)
                await _shows(page, items)
                assert target["ticker"] in {m["ticker"] for m in items}
                assert _search(page.url).get("q") == word
                tickers = await page.locator("table.markets tbody tr:not(.spacer) .ticker").all_inner_texts()
                titles = await page.locator("table.markets tbody tr:not(.spacer) .title").all_inner_texts()
                assert all(word in f"{t} {title}".lower() for t, title in zip(tickers, titles, strict=True))

                # Any status: no status filter asked for.
                async with page.expect_response(
                    lambda r: urlparse(r.url).path == "/api/v1/markets" and "status=" not in r.url
                ) as anything:
                    await page.get_by_label("Status").select_option("any")
                items = (await (await anything.value).json())["items"]
                await _shows(page, items)
                assert _search(page.url).get("status") == "any"
                view_url = page.url
                shown_before = await page.locator("table.markets tbody tr:not(.spacer) .ticker").all_inner_texts()
                await page.screenshot(path=str(ARTIFACTS / "markets-filtered.png"), full_page=True)

                # The link alone reproduces the view, in a fresh page.
                other = await browser.new_page(viewport={"width": 900, "height": 800})
                Watch(other)
                await other.goto(view_url)
                await other.locator("table.markets tbody tr:not(.spacer)").first.wait_for()
                assert await other.get_by_label("Search markets").input_value() == word
                assert await other.get_by_label("Category").input_value() == category
                assert await other.get_by_label("Status").input_value() == "any"
                await expect(other.get_by_role("columnheader", name="24 h")).to_have_attribute(
                    "aria-sort", "descending"
                )
                assert (
                    await other.locator("table.markets tbody tr:not(.spacer) .ticker").all_inner_texts() == shown_before
                )
                await other.screenshot(path=str(ARTIFACTS / "markets-narrow.png"), full_page=True)
                await other.close()

                # Clear the filters: back to every open market, the sort kept.
                await page.get_by_role("button", name="Clear filters").click()
                await page.wait_for_url(lambda u: _search(u) == {"sort": "change_24h"})
                assert await page.get_by_label("Search markets").input_value() == ""

                assert watch.errors == [], watch.errors
                assert watch.failed == [], watch.failed
            finally:
                await browser.close()


async def test_health_page_shows_the_leader_a_standby_and_a_database_outage(
    own_db: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    _preconditions()
    from playwright.async_api import async_playwright, expect

    url, engine = own_db
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with stack(url, engine, tmp_path, standby=True) as (base, app, sim):
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def both_beat() -> bool:
                status = (await client.get("/api/v1/recorder/status")).json()
                roles = sorted(i["role"] for i in status["instances"])
                return roles == ["leader", "standby"] and status["messages_per_second"] is not None

            await wait_until(
                both_beat, "a leader and a standby heartbeat, and a message rate", seconds=30, interval=0.5
            )
            leader = (await client.get("/api/v1/recorder/status")).json()["leader"]["instance_id"]

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo")
                watch = Watch(page)
                await page.goto(base + "/")
                await page.get_by_role("link", name="Recorder health").click()
                await page.wait_for_url("**/health")
                await page.get_by_role("heading", name="Recorder health").wait_for()

                card = page.locator(".card").filter(has=page.get_by_text("Leader", exact=True))
                await expect(card).to_contain_text(leader)
                await expect(card).to_have_class("card grade-ok")
                await expect(page.locator("tr[data-role=leader]")).to_have_count(1)
                await expect(page.locator("tr[data-role=standby]")).to_have_count(1)
                beat = page.locator(".card").filter(has=page.get_by_text("Leader heartbeat", exact=True))
                await expect(beat).to_have_class("card grade-ok")
                rate = (
                    page.locator(".card").filter(has=page.get_by_text("Messages/s", exact=True)).locator(".card-value")
                )
                await expect(rate).not_to_have_text("—")
                db = page.locator(".card").filter(has=page.get_by_text("Database", exact=True))
                await expect(db).to_contain_text("reachable")
                await expect(page.get_by_text("ready", exact=True)).to_be_visible()
                await expect(page.get_by_test_id("gap-hour")).to_have_count(24)
                await page.wait_for_timeout(300)
                await page.screenshot(path=str(ARTIFACTS / "health.png"), full_page=True)
                assert watch.errors == [], watch.errors
                assert watch.failed == [], watch.failed

                # The feed misbehaves: frames dropped (sequence gaps, repaired from REST) and one that is not even
                # JSON. Within a refresh the page shows gaps begun this hour, the recent gaps and the rejected frame.
                sim.set_faults(ws_drop_fraction=0.3)
                await page.wait_for_timeout(1500)
                sim.reset_faults()
                assert sim.inject_ws_frame("this is not JSON") >= 1
                rejected = (
                    page.locator(".card")
                    .filter(has=page.get_by_text("Rejected frames", exact=True))
                    .locator(".card-value")
                )
                await expect(rejected).not_to_have_text("0", timeout=15_000)
                recent = page.get_by_role("region", name="Recent gaps")
                await expect(recent.locator("tbody tr").first).to_be_visible(timeout=15_000)
                await expect(page.locator(".gap-hours rect.bar-open, .gap-hours rect.bar-closed").first).to_be_visible()
                await page.wait_for_timeout(300)
                await page.screenshot(path=str(ARTIFACTS / "health-gaps.png"), full_page=True)

                # The database goes away (for the API: its engines point at a closed port): the page says so
                # within a refresh, keeps the last status on screen, and recovers by itself.
                gone = create_engine("postgresql://nobody@127.0.0.1:1/none", pool_size=1)
                real, real_reads = app.state.engine, app.state.read_engine
                try:
                    app.state.engine = gone
                    app.state.read_engine = gone.execution_options(isolation_level="AUTOCOMMIT")
                    alert = page.get_by_role("alert").filter(has_text="Database unreachable")
                    await alert.wait_for(timeout=15_000)
                    await expect(db).to_contain_text("unreachable")
                    await expect(card).to_contain_text(leader)  # the last answer stays
                    await page.screenshot(path=str(ARTIFACTS / "health-database-down.png"), full_page=True)
                finally:
                    app.state.engine, app.state.read_engine = real, real_reads
                    await gone.dispose()
                await alert.wait_for(state="detached", timeout=15_000)
                await expect(db).to_contain_text("reachable")
                await page.set_viewport_size({"width": 420, "height": 900})  # a narrow window
                await page.goto(base + "/health")  # a client-side route, loaded straight from its URL
                await expect(card).to_contain_text(leader)
                await page.wait_for_timeout(300)
                await page.screenshot(path=str(ARTIFACTS / "health-narrow.png"), full_page=True)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 420, f"the page scrolls sideways: {width} px"
                unexpected = [e for e in watch.errors if "503" not in e]
                assert unexpected == [], unexpected
            finally:
                await browser.close()
