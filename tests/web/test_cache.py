"""The response cache: its rule (unit level) and, through the real app, that recorder commits invalidate it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers

from kalshi_analytics.errors import InvalidInputError, UnavailableError
from kalshi_analytics.recorder.rows import SnapshotRow
from kalshi_analytics.web.cache import COMPRESS_MIN_BYTES, ResponseCache, accepts_gzip, respond
from kalshi_analytics.web.ratelimit import RateLimits
from tests.conftest import wait_until
from tests.fixtures.app import ALLOWED_ORIGIN, market, serve, ticker, write

D = Decimal


def counting_builder(body: bytes = b'{"v":1}') -> tuple[Callable[[], Awaitable[tuple[bytes, str]]], list[int]]:
    calls: list[int] = []

    async def build() -> tuple[bytes, str]:
        calls.append(1)
        await asyncio.sleep(0.01)  # a build takes a while: requests arriving meanwhile must wait for it
        return body + str(len(calls)).encode(), "application/json"

    return build, calls


class FakeClock:
    """The cache's clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = 1000.0  # steps below are binary fractions: sums are exact, so window ends are hit exactly

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def listening_cache(clock: FakeClock | None = None, **kw: float) -> ResponseCache:
    cache = ResponseCache(
        max_bytes=int(kw.get("max_bytes", 1 << 20)),
        fresh_seconds=kw.get("fresh", 0.0),
        max_seconds=kw.get("max_seconds", 60.0),
        clock=clock or FakeClock(),
    )
    cache.listener_state(True)
    return cache


# ------------------------------------------------------------------------------------------------ the rule
async def test_unchanged_answers_are_reused_until_their_ticker_is_notified() -> None:
    cache = listening_cache()
    build, calls = counting_builder()
    first = await cache.get("/a", "T1", build)
    assert (await cache.get("/a", "T1", build)).etag == first.etag
    cache.invalidate(["OTHER"])  # another market changed: still valid
    assert (await cache.get("/a", "T1", build)).etag == first.etag
    assert len(calls) == 1
    cache.invalidate(["T1"])
    second = await cache.get("/a", "T1", build)
    assert second.etag != first.etag
    assert len(calls) == 2
    assert (cache.hits, cache.misses) == (2, 2)


async def test_answers_about_every_market_fall_to_any_notification() -> None:
    cache = listening_cache()
    build, calls = counting_builder()
    await cache.get("/markets", None, build)
    await cache.get("/markets", None, build)
    cache.invalidate(["ANY"])
    await cache.get("/markets", None, build)
    assert len(calls) == 2


async def test_answers_about_a_closed_window_survive_commits_that_start_at_or_after_its_end() -> None:
    cache = listening_cache()
    build, calls = counting_builder()
    end = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    await cache.get("/h", "T1", build, horizon=end)
    cache.invalidate(["T1"], end)  # live data from the window's end on: unaffected
    cache.invalidate(["T1"], end + timedelta(minutes=5))
    cache.invalidate(["T1"], None)  # catalogue rows only
    await cache.get("/h", "T1", build, horizon=end)
    assert len(calls) == 1
    cache.invalidate(["T1"], end - timedelta(minutes=1))  # a repair inside the window
    await cache.get("/h", "T1", build, horizon=end)
    assert len(calls) == 2
    cache.invalidate(["T1"])  # a notification that does not say: anything may have changed
    await cache.get("/h", "T1", build, horizon=end)
    assert len(calls) == 3
    await cache.get("/latest", "T1", build)  # no horizon: any change of T1 counts, catalogue too
    cache.invalidate(["T1"], None)
    await cache.get("/latest", "T1", build)
    assert len(calls) == 5


async def test_fresh_window_bounds_staleness_and_volatile_answers_live_only_in_it() -> None:
    clock = FakeClock()
    cache = listening_cache(clock, fresh=0.25)
    build, calls = counting_builder()
    await cache.get("/a", "T1", build)
    cache.invalidate(["T1"])
    clock.advance(0.125)
    await cache.get("/a", "T1", build)  # changed, but within the fresh window: reused
    assert len(calls) == 1
    clock.advance(0.125)
    await cache.get("/a", "T1", build)  # at its end: rebuilt
    assert len(calls) == 2

    await cache.get("/now", "T2", build, volatile=True)
    clock.advance(0.125)
    await cache.get("/now", "T2", build, volatile=True)
    assert len(calls) == 3
    clock.advance(0.125)
    await cache.get("/now", "T2", build, volatile=True)  # nothing changed, but the window moved with the clock
    assert len(calls) == 4


async def test_without_a_listener_nothing_outlives_the_fresh_window() -> None:
    cache = listening_cache()
    build, calls = counting_builder()
    await cache.get("/a", "T1", build)
    cache.listener_state(False)
    await cache.get("/a", "T1", build)
    cache.listener_state(True)  # reconnected: notifications sent meanwhile are lost, so older entries are out
    await cache.get("/a", "T1", build)
    await cache.get("/a", "T1", build)
    assert len(calls) == 3


async def test_max_age_and_refresh() -> None:
    clock = FakeClock()
    cache = listening_cache(clock, max_seconds=0.5)
    build, calls = counting_builder()
    await cache.get("/a", "T1", build)
    clock.advance(0.25)
    await cache.get("/a", "T1", build)  # younger than max_seconds: reused
    assert len(calls) == 1
    clock.advance(0.25)
    await cache.get("/a", "T1", build)  # that old: rebuilt
    assert len(calls) == 2
    await cache.get("/a", "T1", build, refresh=True)
    assert len(calls) == 3


async def test_a_notification_during_the_build_outdates_the_answer() -> None:
    cache = listening_cache()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> tuple[bytes, str]:
        started.set()
        await release.wait()
        return b"old", "application/json"

    task = asyncio.create_task(cache.get("/a", "T1", slow))
    await started.wait()
    cache.invalidate(["T1"])  # committed after the query read its rows
    release.set()
    assert (await task).body == b"old"
    build, calls = counting_builder()
    await cache.get("/a", "T1", build)
    assert len(calls) == 1

    # A build about a closed window is not outdated by live data after its end.
    end = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    started.clear()
    release.clear()
    task = asyncio.create_task(cache.get("/h", "T1", slow, horizon=end))
    await started.wait()
    cache.invalidate(["T1"], end)
    release.set()
    await task
    await cache.get("/h", "T1", build, horizon=end)
    assert len(calls) == 1


async def test_concurrent_misses_share_one_build_and_its_error() -> None:
    cache = listening_cache()
    build, calls = counting_builder()
    results = await asyncio.gather(*(cache.get("/a", "T1", build) for _ in range(50)))
    assert len(calls) == 1
    assert len({r.etag for r in results}) == 1

    failures: list[int] = []

    async def failing() -> tuple[bytes, str]:
        failures.append(1)
        await asyncio.sleep(0.01)  # still failing while the other requests arrive
        raise LookupError("no such market")

    outcomes = await asyncio.gather(*(cache.get("/b", "T1", failing) for _ in range(20)), return_exceptions=True)
    assert len(failures) == 1
    assert all(isinstance(o, LookupError) for o in outcomes)
    with pytest.raises(LookupError):  # errors are not stored: the next request tries again
        await cache.get("/b", "T1", failing)
    assert len(failures) == 2


async def test_a_client_going_away_does_not_cancel_the_shared_build() -> None:
    cache = listening_cache()
    build, calls = counting_builder()
    first = asyncio.create_task(cache.get("/a", "T1", build))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("/a", "T1", build))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).body == b'{"v":1}1'
    assert len(calls) == 1


async def test_large_bodies_are_stored_gzipped_and_the_byte_budget_evicts_oldest() -> None:
    body = json.dumps([{"price": "0.5000", "n": i} for i in range(2000)]).encode()
    assert len(body) > COMPRESS_MIN_BYTES
    cache = listening_cache(max_bytes=400_000)

    async def big() -> tuple[bytes, str]:
        return body, "application/json"

    entry = await cache.get("/big", "T1", big)
    assert entry.gzipped
    assert entry.size < len(body) / 4
    assert entry.plain() == body
    small, _ = counting_builder()
    for i in range(40):
        await cache.get(f"/k{i}", "T1", small)
    assert cache.size_bytes <= 400_000
    for i in range(2000):  # push far past the budget
        await cache.get(f"/f{i}", "T1", big)
    assert cache.size_bytes <= 400_000
    assert len(cache) < 2000


async def test_while_the_database_is_away_a_recent_answer_is_sent_marked_stale() -> None:
    clock = FakeClock()
    cache = listening_cache(clock, fresh=1.0, max_seconds=600.0)
    cache.stale_seconds = 60.0
    build, calls = counting_builder()
    first = await cache.get("k", "T", build)
    cache.invalidate(["T"])  # newer data was committed: the answer may not be reused as if current

    async def away() -> tuple[bytes, str]:
        raise UnavailableError("the database cannot be reached now", retry_after=2)

    clock.advance(30)
    stale = await cache.get("k", "T", away)
    assert stale.body == first.body
    assert stale.stale_age == 30
    headers = respond(Headers(), stale).headers
    assert headers["x-cache"] == "stale"
    assert headers["age"] == "30"
    assert cache.stale_answers == 1
    # Never to a request that refuses cached answers, never older than stale_seconds, never other errors.
    with pytest.raises(UnavailableError):
        await cache.get("k", "T", away, refresh=True)
    clock.advance(31)
    with pytest.raises(UnavailableError):
        await cache.get("k", "T", away)
    with pytest.raises(InvalidInputError):
        await cache.get("k", "T", _raises(InvalidInputError("bad cursor")))
    # Once the database answers again, a new answer replaces it and nothing is marked.
    fresh = await cache.get("k", "T", build)
    assert fresh.stale_age is None
    assert "x-cache" not in respond(Headers(), fresh).headers
    assert len(calls) == 2


def _raises(error: Exception) -> Callable[[], Awaitable[tuple[bytes, str]]]:
    async def build() -> tuple[bytes, str]:
        raise error

    return build


async def test_a_disabled_cache_builds_every_time() -> None:
    cache = ResponseCache(max_bytes=0, fresh_seconds=1, max_seconds=60)
    build, calls = counting_builder(b"x" * (COMPRESS_MIN_BYTES + 1))
    entry = await cache.get("/a", "T1", build)
    await cache.get("/a", "T1", build)
    assert len(calls) == 2
    assert not entry.gzipped
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        (None, False),
        ("GZIP", True),
    ],
)
def test_accepts_gzip(header: str | None, ok: bool) -> None:
    assert accepts_gzip(header) is ok


# ------------------------------------------------------------------------------------- through the real app
async def test_recorder_commits_invalidate_cached_answers(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    app = app_factory(api_cache_fresh_seconds=0)
    t = ticker()
    ts = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    await write(engine, market(t), SnapshotRow(ticker=t, ts=ts, source="poll", received_at=ts, last_price=D("0.4")))
    async with serve(app) as client:
        await asyncio.wait_for(app.state.stream_hub.listening.wait(), 10)
        cache: ResponseCache = app.state.response_cache
        url = f"/api/v1/markets/{t}/latest"
        first = await client.get(url)
        assert first.json()["last_price"] == "0.4000"
        assert first.headers["cache-control"] == "no-cache"
        assert first.headers["etag"]

        # A change that bypasses the recorder (no notification) is not seen while the answer is cached...
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE market_snapshots SET last_price = 0.45 WHERE ticker = :t AND ts = :ts"), {"t": t, "ts": ts}
            )
        hits = cache.hits
        assert (await client.get(url)).json()["last_price"] == "0.4000"
        assert cache.hits == hits + 1
        # ...unless the client asks for a fresh answer, which also refreshes the cache.
        fresh = await client.get(url, headers={"Cache-Control": "no-cache"})
        assert fresh.json()["last_price"] == "0.4500"
        assert (await client.get(url)).json()["last_price"] == "0.4500"

        # The recorder's commit notifies; the next read sees the new snapshot.
        later = ts + timedelta(seconds=5)
        await write(engine, SnapshotRow(ticker=t, ts=later, source="poll", received_at=later, last_price=D("0.55")))

        async def updated() -> bool:
            return bool((await client.get(url)).json()["last_price"] == "0.5500")

        await wait_until(updated, "the recorded price in the answer")

        # Conditional requests: the same ETag gets 304 with no body.
        current = await client.get(url)
        again = await client.get(url, headers={"If-None-Match": current.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == current.headers["etag"]
        metrics = (await client.get("/metrics")).text
        assert "kalshi_api_cache_hits_total" in metrics
        assert "kalshi_api_cache_invalidations_total" in metrics


async def test_large_answers_go_out_gzipped_to_clients_that_accept_it(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    t = ticker()
    start = datetime(2026, 11, 19, 0, 0, tzinfo=UTC)
    rows = [
        SnapshotRow(
            ticker=t,
            ts=start + timedelta(seconds=30 * i),
            source="poll",
            received_at=start + timedelta(seconds=30 * i),
            yes_bid=D("0.40") + D("0.01") * (i % 20),
            yes_ask=D("0.42") + D("0.01") * (i % 20),
            last_price=D("0.41"),
        )
        for i in range(240)
    ]
    await write(engine, market(t), *rows)
    app = app_factory()
    params = {"interval": "1m", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    async with serve(app) as client:
        url = f"/api/v1/markets/{t}/history"
        # httpx asks for gzip by default and decodes it transparently; compare with a plain request.
        zipped = await client.get(url, params=params)
        plain = await client.get(url, params=params, headers={"Accept-Encoding": "identity"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert zipped.json() == plain.json()
        assert len(plain.json()["candles"]) == 120
        assert int(zipped.headers["content-length"]) < len(plain.content) / 4


async def test_answers_from_the_cache_carry_the_headers_the_route_sent(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    """Answered before routing from headers made once per stored answer: the same headers as the route's own
    answer, every time (nothing around it may add to them twice), in each encoding."""
    t = ticker()
    start = datetime(2026, 11, 19, 0, 0, tzinfo=UTC)
    rows = [
        SnapshotRow(ticker=t, ts=start + timedelta(seconds=30 * i), source="poll",
                    received_at=start + timedelta(seconds=30 * i), yes_bid=D("0.40") + D("0.01") * (i % 20))
        for i in range(240)
    ]  # fmt: skip
    await write(engine, market(t), *rows)
    app = app_factory()
    params = {"interval": "1m", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    async with serve(app) as client:
        cache: ResponseCache = app.state.response_cache
        url = f"/api/v1/markets/{t}/history"
        for encoding in ("gzip", "identity"):
            asked = {"Origin": ALLOWED_ORIGIN, "Accept-Encoding": encoding}
            answers = [await client.get(url, params=params, headers=asked) for _ in range(3)]
            assert [sorted(r.headers.multi_items()) for r in answers[1:]] == [
                sorted(answers[0].headers.multi_items())
            ] * 2
            assert answers[2].headers.get_list("vary") == ["Accept-Encoding, Origin"]
            assert answers[2].content == answers[0].content
        assert cache.misses == 1


async def test_history_with_an_end_stays_cached_while_live_data_arrives_but_not_after_a_repair(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    app = app_factory(api_cache_fresh_seconds=0)
    t = ticker()
    start = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    end = start + timedelta(hours=1)

    def snap(at: datetime, price: str) -> SnapshotRow:
        return SnapshotRow(ticker=t, ts=at, source="poll", received_at=at, last_price=D(price))

    await write(engine, market(t), *(snap(start + timedelta(minutes=2 * i), "0.30") for i in range(30)))
    async with serve(app) as client:
        await asyncio.wait_for(app.state.stream_hub.listening.wait(), 10)
        cache: ResponseCache = app.state.response_cache
        url = f"/api/v1/markets/{t}/history"
        params = {"interval": "1m", "start": start.isoformat(), "end": end.isoformat()}
        first = await client.get(url, params=params)
        assert len(first.json()["candles"]) == 30

        async def notified(before: int) -> None:
            async def seen() -> bool:
                return cache.invalidations > before

            await wait_until(seen, "the notification")

        before = cache.invalidations
        await write(engine, snap(end + timedelta(minutes=10), "0.90"))  # live data after the window
        await notified(before)
        hits = cache.hits
        again = await client.get(url, params=params)
        assert cache.hits == hits + 1
        assert again.headers["etag"] == first.headers["etag"]

        before = cache.invalidations
        await write(engine, snap(start + timedelta(minutes=31), "0.55"))  # a repaired minute inside it
        await notified(before)
        repaired = await client.get(url, params=params)
        assert repaired.headers["etag"] != first.headers["etag"]
        assert len(repaired.json()["candles"]) == 31


async def test_a_relative_time_is_never_served_stale(app_factory: Callable[..., FastAPI], engine: AsyncEngine) -> None:
    """``end=now`` (or ``start=-1h``) names another window a moment later: like an omitted ``end``, its answer
    lives only in the fresh window, while the same window written as fixed times stays cached."""
    app = app_factory(api_cache_fresh_seconds=0)
    t = ticker()
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    await write(engine, market(t), SnapshotRow(ticker=t, ts=ts, source="poll", received_at=ts, last_price=D("0.40")))
    fixed = {"start": (ts - timedelta(hours=1)).isoformat(), "end": (ts + timedelta(hours=1)).isoformat()}
    asks = {
        "fixed": (f"/api/v1/markets/{t}/history", fixed),
        "end=now": (f"/api/v1/markets/{t}/history", {"start": "-1d", "end": "now"}),
        "start=-1d": (f"/api/v1/markets/{t}/history", {"start": "-1d", "end": fixed["end"]}),
        "candles": (f"/api/v1/markets/{t}/history", {"interval": "1m", "start": "-1h", "end": "now"}),
        "trades": (f"/api/v1/markets/{t}/trades", {"end": "now"}),
        "book": (f"/api/v1/markets/{t}/orderbook", {"at": "now"}),
    }
    async with serve(app) as client:
        await asyncio.wait_for(app.state.stream_hub.listening.wait(), 10)
        cache: ResponseCache = app.state.response_cache
        first = {name: await client.get(url, params=params) for name, (url, params) in asks.items()}
        assert first["end=now"].json()["items"][0]["last_price"] == "0.4000"
        # A change no notification announces: only a reuse of the stored answer can miss it.
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE market_snapshots SET last_price = 0.45 WHERE ticker = :t AND ts = :ts"), {"t": t, "ts": ts}
            )
        hits, misses = cache.hits, cache.misses
        again = {name: await client.get(url, params=params) for name, (url, params) in asks.items()}
        assert again["fixed"].json()["items"][0]["last_price"] == "0.4000"  # cached, as designed
        assert cache.hits == hits + 1
        assert cache.misses == misses + len(asks) - 1  # every relative request was read again
        assert again["end=now"].json()["items"][0]["last_price"] == "0.4500"
        assert again["start=-1d"].json()["items"][0]["last_price"] == "0.4500"
        assert [r.status_code for r in again.values()] == [r.status_code for r in first.values()]


async def test_answers_sent_before_routing_keep_rate_limits_cors_and_metrics(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    t = ticker()
    ts = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    await write(engine, market(t), SnapshotRow(ticker=t, ts=ts, source="poll", received_at=ts, last_price=D("0.4")))
    app = app_factory(api_rate_limit_enabled=True, api_rate_read="4/minute", api_rate_expensive="2/minute")
    async with serve(app) as client:
        cache: ResponseCache = app.state.response_cache
        origin = {"Origin": ALLOWED_ORIGIN}
        latest = f"/api/v1/markets/{t}/latest"
        answers = [await client.get(latest, headers=origin) for _ in range(5)]
        assert [r.status_code for r in answers] == [200, 200, 200, 200, 429]
        assert cache.misses == 1  # the second to fourth came from the cache, before routing...
        assert all(r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN for r in answers[:4])
        refused = answers[4]  # ...and were charged all the same
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1

        # A raw page is charged to both classes; the cached copy too.
        raw = f"/api/v1/markets/{t}/history"
        params = {"start": (ts - timedelta(hours=1)).isoformat(), "end": (ts + timedelta(hours=1)).isoformat()}
        app.state.rate_limits = RateLimits.from_settings(app.state.settings)  # a new minute, as it were
        pages = [await client.get(raw, params=params) for _ in range(3)]
        assert [r.status_code for r in pages] == [200, 200, 429]
        assert "expensive" in pages[2].json()["detail"]

        metrics = (await client.get("/metrics")).text
        assert 'route="/api/v1/markets/{ticker}/latest",status="200"} 4.0' in metrics
        assert 'route="unmatched"' not in metrics


async def test_latest_snapshots_clients_keep_asking_for_are_refreshed_ahead_of_them(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    app = app_factory(api_cache_fresh_seconds=0)
    watched, ignored = ticker(), ticker()
    ts = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def snap(t: str, at: datetime, price: str) -> SnapshotRow:
        return SnapshotRow(ticker=t, ts=at, source="poll", received_at=at, last_price=D(price))

    await write(engine, market(watched), market(ignored), snap(watched, ts, "0.40"), snap(ignored, ts, "0.40"))
    async with serve(app) as client:
        await asyncio.wait_for(app.state.stream_hub.listening.wait(), 10)
        cache: ResponseCache = app.state.response_cache
        url = f"/api/v1/markets/{watched}/latest"
        assert (await client.get(url)).json()["last_price"] == "0.4000"
        misses = cache.misses

        later = ts + timedelta(seconds=5)
        await write(engine, snap(watched, later, "0.52"), snap(ignored, later, "0.52"))

        async def refreshed() -> bool:
            return cache.refreshes >= 1

        await wait_until(refreshed, "the refresh ahead")
        fresh = await client.get(url)
        assert fresh.json()["last_price"] == "0.5200"
        assert fresh.json()["implied_probability_source"] == "last"
        assert cache.misses == misses  # answered from the refreshed entry, nobody waited for the database
        assert cache.refreshes == 1  # the market nobody asked about was not re-read
        # Byte for byte what the endpoint itself renders.
        rebuilt = await client.get(url, headers={"Cache-Control": "no-cache"})
        assert rebuilt.content == fresh.content
        assert rebuilt.headers["etag"] == fresh.headers["etag"]
