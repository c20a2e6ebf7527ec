"""Token bucket timing with a fake clock (no real sleeps)."""

from __future__ import annotations

import asyncio

import pytest

from kalshi_analytics.config import load_settings
from kalshi_analytics.kalshi import RATE_TIERS, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_tiers_match_the_published_budgets() -> None:
    basic = RATE_TIERS["basic"]
    assert basic.requests_per_s == 20
    assert basic.burst_requests == 40
    assert RATE_TIERS["advanced"].requests_per_s == 30
    assert RATE_TIERS["premier"].burst_requests == 100
    assert RATE_TIERS["prestige"].requests_per_s == 1000


async def test_basic_bucket_bursts_then_paces_at_20_per_second() -> None:
    clock = FakeClock()
    bucket = TokenBucket.for_tier("basic", clock=clock, sleep=clock.sleep)
    for _ in range(40):  # 2 s of capacity
        assert await bucket.acquire() == 0
    assert clock.sleeps == []
    start = clock.now
    for _ in range(20):
        await bucket.acquire()
    assert clock.now - start == pytest.approx(1.0)
    assert all(s == pytest.approx(0.05) for s in clock.sleeps)
    assert bucket.waits == 20


def test_refill_is_continuous_and_capped() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=5, clock=clock)
    assert bucket.try_acquire(5)
    assert not bucket.try_acquire()
    assert bucket.delay_for(1) == pytest.approx(0.1)
    clock.now += 0.25
    assert bucket.tokens == pytest.approx(2.5)
    clock.now += 100
    assert bucket.tokens == 5  # never above capacity
    bucket.drain()
    assert bucket.tokens == 0


async def test_concurrent_acquirers_share_the_budget() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, capacity=1, clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(bucket.acquire() for _ in range(5)))
    assert clock.now - 1000.0 == pytest.approx(2.0)  # 1 from the full bucket, then 4 at 2/s


def test_override_and_bad_values() -> None:
    bucket = TokenBucket.for_tier("basic", requests_per_s=500)
    assert bucket.rate == 500
    assert bucket.capacity == 1000
    with pytest.raises(ValueError, match="unknown Kalshi rate tier"):
        TokenBucket.for_tier("platinum")
    with pytest.raises(ValueError, match="> 0"):
        TokenBucket(0, 1)


async def test_cannot_acquire_more_than_capacity() -> None:
    with pytest.raises(ValueError, match="cannot take"):
        await TokenBucket(1, 2).acquire(3)


def test_rate_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KALSHI_RATE_TIER", raising=False)
    monkeypatch.delenv("KALSHI_RATE_LIMIT_RPS", raising=False)
    assert load_settings().kalshi_rate_tier == "basic"
    monkeypatch.setenv("KALSHI_RATE_TIER", "Advanced")
    monkeypatch.setenv("KALSHI_RATE_LIMIT_RPS", "250")
    settings = load_settings()
    assert settings.kalshi_rate_tier == "advanced"
    assert settings.kalshi_rate_limit_rps == 250
