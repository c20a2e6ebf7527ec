"""The dashboard's budgets (issue 15), measured in Debian's Chromium against the real API on loopback.

    python -m bench.dashboard [--markets 30] [--rounds 7] [--ticks 10]

1. A fresh database gets ``--markets`` markets × 25 h of snapshots (one every 15 s) through the recorder's
   sink, as in ``bench.api_latency`` — so every market has a full day of 1-minute candles.
2. ``kalshi-analytics api`` serves it and the built dashboard (``frontend/dist``) on 127.0.0.1 with the
   defaults (response cache and rate limiting on).
3. In Chromium (``/usr/bin/chromium``, driven by Playwright; no browser is downloaded), each round in a fresh
   browser context (nothing cached):

   * **first load of the markets page**: from ``goto('/')`` until the first market row is on screen;
   * **JavaScript of the first page**: the bytes of script responses as sent (gzip), summed;
   * **a day of 1-minute candles rendered**: a market page not opened before (its history not in the API's cache
     either), from the history answer's last byte (Resource Timing) to the animation frame after the chart
     drew the candles (the page's ``ka:candles-rendered`` mark), and from navigation start;
   * **a committed tick visible**: with a market page open, a snapshot is committed through the recorder's sink;
     from just before the write until the animation frame after the page applied it (``ka:tick`` mark). Upper
     bound: it includes the write's own commit.

Budgets: first load < 1 s; JS ≤ 300 kB gzipped; tick visible < 1 s after commit; a day rendered < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.api_latency import load, start_server, ticker_of, wait_healthy
from bench.common import free_port, fresh_database
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.recorder.sink import Sink

CHROMIUM = Path(os.environ.get("KA_CHROMIUM", "/usr/bin/chromium"))
DIST = Path(__file__).resolve().parents[1] / "frontend" / "dist"
VIEWPORT = {"width": 1280, "height": 860}

#: Waits in the page until a performance mark of this name exists, then returns its entries as plain objects.
MARKS_JS = """(name) => performance.getEntriesByName(name, 'mark').map(m => ({t: m.startTime, detail: m.detail}))"""


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def summary(label: str, xs: list[float], unit: str, budget: float) -> str:
    med = statistics.median(xs)
    verdict = "met" if med < budget else "NOT met"
    return (
        f"  {label:44} median {med:8.1f} {unit}  min {min(xs):8.1f}  max {max(xs):8.1f}  "
        f"(n={len(xs)}; budget < {budget:g} {unit}: {verdict})"
    )


async def commit_tick(url: str, ticker: str, price: Decimal) -> float:
    """Commit one snapshot of ``ticker`` through the recorder's sink; returns the wall time before the write."""
    engine = create_engine(url, pool_size=1)
    try:
        async with Sink(engine, batch_max_seconds=0.0) as sink:
            now = datetime.now(UTC)
            started = time.time()
            await sink.put(
                SnapshotRow(
                    ticker=ticker,
                    ts=now,
                    source="poll",
                    received_at=now,
                    yes_bid=price,
                    yes_ask=price + Decimal("0.02"),
                    last_price=price + Decimal("0.01"),
                )
            )
            await sink.flush()
            return started
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=7, help="cold loads of each page")
    ap.add_argument("--ticks", type=int, default=10, help="committed ticks timed on one open market page")
    args = ap.parse_args()
    if not CHROMIUM.is_file():
        raise SystemExit(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    if not (DIST / "index.html").is_file():
        raise SystemExit("the dashboard is not built: cd frontend && npm ci && npm run build")
    asyncio.run(measure(args))


async def measure(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with fresh_database() as url:
        await load(url, args.markets, now - timedelta(hours=25), now)
        port = free_port()
        server = start_server(url, port, workers=1, cache_mb=None, rate="1000000/second")
        try:
            await wait_healthy(port, server)
            base = f"http://127.0.0.1:{port}"
            loads: list[float] = []
            js_bytes: list[float] = []
            after_answer: list[float] = []
            from_nav: list[float] = []
            candles_drawn: list[int] = []
            ticks: list[float] = []
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                try:
                    # 1. First load of the markets page, cold, and the JavaScript it took.
                    for _ in range(args.rounds):
                        context = await browser.new_context(viewport=VIEWPORT)
                        page = await context.new_page()
                        scripts: list[int] = []

                        async def on_finished(request, scripts=scripts):  # type: ignore[no-untyped-def]
                            if request.resource_type == "script":
                                scripts.append((await request.sizes())["responseBodySize"])

                        page.on("requestfinished", on_finished)
                        t0 = time.perf_counter()
                        await page.goto(base + "/")
                        await page.locator("tbody tr").first.wait_for()
                        loads.append((time.perf_counter() - t0) * 1000)
                        await page.wait_for_load_state("networkidle")
                        js_bytes.append(sum(scripts) / 1000)
                        await context.close()

                    # 2. A day of 1-minute candles rendered, each round a market not opened before.
                    for k in range(args.rounds):
                        context = await browser.new_context(viewport=VIEWPORT)
                        page = await context.new_page()
                        await page.goto(f"{base}/markets/{ticker_of(1 + k % (args.markets - 1))}")
                        await page.wait_for_function("(" + MARKS_JS + ")('ka:candles-rendered').length > 0")
                        marks = await page.evaluate(MARKS_JS, "ka:candles-rendered")
                        answer_end = await page.evaluate(
                            """() => Math.max(...performance.getEntriesByType('resource')
                                   .filter(e => e.name.includes('/history')).map(e => e.responseEnd))"""
                        )
                        first = marks[0]
                        after_answer.append(first["t"] - answer_end)
                        from_nav.append(first["t"])
                        candles_drawn.append(int(first["detail"]["candles"]))
                        await context.close()

                    # 3. A committed tick, visible: one market page open, snapshots committed one at a time.
                    context = await browser.new_context(viewport=VIEWPORT)
                    page = await context.new_page()
                    ticker = ticker_of(0)
                    await page.goto(f"{base}/markets/{ticker}")
                    await page.wait_for_function("(" + MARKS_JS + ")('ka:candles-rendered').length > 0")
                    await page.wait_for_function(
                        "document.querySelector('.live-pill')?.classList.contains('live-live') === true"
                    )
                    origin = await page.evaluate("performance.timeOrigin")
                    for i in range(args.ticks):
                        seen = len(await page.evaluate(MARKS_JS, "ka:tick"))
                        started = await commit_tick(url, ticker, Decimal("0.20") + Decimal(i) / 100)
                        await page.wait_for_function("(" + MARKS_JS + f")('ka:tick').length > {seen}", timeout=10_000)
                        mark = (await page.evaluate(MARKS_JS, "ka:tick"))[seen]
                        ticks.append((origin + mark["t"]) - started * 1000)
                        await asyncio.sleep(0.3)
                    await context.close()
                finally:
                    await browser.close()
        finally:
            server.terminate()
            server.wait(15)

    print(f"dashboard budgets, Chromium on loopback, {args.markets} markets × 25 h through the sink:")
    print(summary("first load of the markets page (rows shown)", loads, "ms", 1000))
    print(summary("JavaScript of the first page, gzipped", js_bytes, "kB", 300))
    print(summary("a day of 1m candles: answer → drawn", after_answer, "ms", 200))
    print(f"  {'':44} navigation → drawn median {statistics.median(from_nav):.0f} ms; candles drawn {candles_drawn}")
    print(summary("a committed tick visible on the market page", ticks, "ms", 1000))
    print(f"  {'':44} p95 {pct(ticks, 0.95):.0f} ms")


if __name__ == "__main__":
    main()
