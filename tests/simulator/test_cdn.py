"""The ``rest_stale_seconds`` fault: REST answers cached per URL like Kalshi's CDN, with CloudFront's headers."""

from __future__ import annotations

import asyncio

import httpx

from kalshi_analytics.kalshi.answer_time import answer_time
from kalshi_analytics.simulator import run_simulator
from tests.conftest import wait_until
from tests.simulator.conftest import config


async def test_stale_answers_per_url_until_max_age_with_cloudfront_headers() -> None:
    async with run_simulator(config(speed=1.0, activity=30.0)) as sim:
        ticker = max((m for m in sim.model.market_list if m.status == "active"), key=lambda m: m.trade_rate).ticker
        async with (
            httpx.AsyncClient(base_url=sim.base_url, timeout=10) as http,
            httpx.AsyncClient(base_url=sim.admin_url, timeout=10) as admin,
        ):
            faults = (await admin.post("/faults", json={"rest_stale_seconds": 2})).json()
            assert faults["rest_stale_seconds"] == 2
            first = await http.get(f"/markets/{ticker}")
            assert first.status_code == 200
            assert first.headers["cache-control"] == "public, max-age=2"
            assert first.headers["x-cache"] == "Miss from cloudfront"
            made = answer_time(first.headers)  # the exchange's clock (here a fixed simulated start), not ours
            assert made is not None
            assert abs(made.timestamp() - sim.model.now) < 2
            volume = sim.model.markets[ticker].volume
            await wait_until(lambda: sim.model.markets[ticker].volume != volume, "the market to trade")
            stale = await http.get(f"/markets/{ticker}")
            assert stale.headers["x-cache"] == "Hit from cloudfront"
            assert stale.content == first.content, "a cached answer is served although the market moved"
            assert int(stale.headers["age"]) <= 2
            assert stale.headers["date"] == first.headers["date"], "a cached answer keeps the origin's Date"
            other = await http.get(f"/markets/{ticker}?x=1")  # another URL, another cache entry
            assert other.headers["x-cache"] == "Miss from cloudfront"
            assert other.json() != first.json()
            await asyncio.sleep(2.1)  # the cache's age limit passing is the test
            fresh = await http.get(f"/markets/{ticker}")
            assert fresh.headers["x-cache"] == "Miss from cloudfront"
            assert fresh.json() != first.json()
            state = (await admin.get("/state")).json()
            assert state["rest_cache"]["hits"] >= 1
            await admin.post("/faults", json={"rest_stale_seconds": 0})
            assert "x-cache" not in (await http.get(f"/markets/{ticker}")).headers
