"""The fast lane answers exactly as the full FastAPI stack: the same requests through an app with the lane and one
without give the same status, headers that matter and body; what the lane does not take still gets FastAPI's
answer (422 wording, 404s, 429s)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.web import fast_lane
from tests.fixtures.app import market, serve, ticker, write

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEADERS = ("content-type", "content-encoding", "etag", "cache-control", "retry-after", "x-cache", "vary")


async def _answers(app: FastAPI, paths: list[str], headers: dict[str, str]) -> list[tuple[Any, ...]]:
    out = []
    async with serve(app) as client:
        for p in paths:
            r = await client.get(p, headers=headers)
            out.append((p, r.status_code, {h: r.headers.get(h) for h in HEADERS}, r.content))
    return out


@pytest.fixture
async def recorded(engine: AsyncEngine) -> str:
    t = ticker("KXLANE")
    rows = [
        SnapshotRow(t, T0 + timedelta(minutes=i), "poll", T0 + timedelta(minutes=i), yes_bid=D("0.40"),
                    yes_ask=D("0.43"), volume=D(i))
        for i in range(180)
    ]  # fmt: skip
    await write(engine, market(t), *rows)
    return t


def _requests(t: str) -> list[str]:
    base = f"/api/v1/markets/{t}"
    s, e = "2026-11-20T12:00:00Z", "2026-11-20T14:00:00Z"
    return [
        f"{base}/latest",
        f"{base}/latest?unknown=1",
        "/api/v1/markets/KXLANE-NOPE/latest",
        f"{base}/history?start={s}&end={e}",
        f"{base}/history?start={s}&end={e}&limit=7",
        f"{base}/history?start={s}&end={e}&interval=1m",
        f"{base}/history?start={s}&end={e}&interval=5m&limit=3",
        f"{base}/history?start=1763640000&end=2026-11-20T13:00:00%2B00:00&interval=1h",
        f"{base}/history?start={s}&end={e}&interval=2m",  # not an interval: FastAPI's 422
        f"{base}/history?start={s}&end={e}&limit=0",
        f"{base}/history?start={s}&end={e}&limit=1001",
        f"{base}/history?start={s}&end={e}&limit=007",
        f"{base}/history?start={s}&end={e}&limit=%2B5",
        f"{base}/history?start=yesterday-ish&end={e}",  # read by query_time inside the endpoint: its 422
        f"{base}/history?start={s}&start={s}",
        f"{base}/history?start=",
        f"{base}/history?start={s}&end={e}&cursor=not-a-cursor",
        f"{base}/history?start={s}&end={e}&cursor=a%00b",
        f"{base}/history?end={e}&start={s}&limit=5",
        "/api/v1/markets/KXLANE-NOPE/history?interval=1m",
        f"/api/v1/markets/{'X' * 201}/latest",
    ]


async def test_the_lane_and_the_full_stack_give_the_same_answers(
    app_factory: Callable[..., FastAPI], recorded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered: list[str] = []
    original = fast_lane.FastLane._answer

    async def spy(self: fast_lane.FastLane, fast: Any, value: str, scope: Any, *rest: Any) -> bool:
        taken = await original(self, fast, value, scope, *rest)
        if taken:
            answered.append(scope["path"] + "?" + scope["query_string"].decode())
        return taken

    monkeypatch.setattr(fast_lane.FastLane, "_answer", spy)
    paths = _requests(recorded)
    for accept in ({"accept-encoding": "gzip"}, {"accept-encoding": "identity"}):
        lane = await _answers(app_factory(api_cache_mb=0, api_fast_lane=True), paths, accept)
        full = await _answers(app_factory(api_cache_mb=0, api_fast_lane=False), paths, accept)
        for a, b in zip(lane, full, strict=True):
            assert a == b, a[0]
    statuses = {p: s for p, s, _, _ in lane}
    assert statuses[f"/api/v1/markets/{recorded}/latest"] == 200
    assert statuses["/api/v1/markets/KXLANE-NOPE/latest"] == 404
    assert sorted(set(statuses.values())) == [200, 404, 422]
    # the plain requests were the lane's (both encodings), the odd ones FastAPI's
    assert len(answered) >= 2 * 9
    assert not any("limit=0" in a or "interval=2m" in a or "%2B5" in a for a in answered)


@pytest.mark.parametrize("cache_mb", [0, 16])
async def test_rate_limits_and_metrics_are_the_routes(
    app_factory: Callable[..., FastAPI], recorded: str, cache_mb: int
) -> None:
    """Each answer is charged once to "read", whether the lane built it or the cache sent it again (the cache
    charges what the request that stored it was charged)."""
    for on in (True, False):
        app = app_factory(
            api_cache_mb=cache_mb, api_fast_lane=on, api_rate_limit_enabled=True, api_rate_read="3/minute"
        )
        async with serve(app) as client:
            codes = [(await client.get(f"/api/v1/markets/{recorded}/latest")).status_code for _ in range(5)]
            assert codes == [200, 200, 200, 429, 429]
            raw = await client.get(f"/api/v1/markets/{recorded}/history?limit=5")  # also over the read limit
            assert raw.status_code == 429
            metrics = (await client.get("/metrics")).text
        line = next(x for x in metrics.splitlines() if "latest" in x and 'status="200"' in x and "_total" in x)
        assert 'route="/api/v1/markets/{ticker}/latest"' in line
        assert line.endswith(" 3.0")
