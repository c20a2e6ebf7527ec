"""Client-side token bucket so we stay under Kalshi's read budget instead of collecting 429s (KALSHI_API.md §6).

Kalshi bills every REST request (default cost 10 tokens) against a per-tier token bucket that refills continuously.
We model it in *requests*: Basic = 200 read tokens/s / 10 per request = 20 requests/s with 2 s of capacity
(40 requests of burst). The clock and the sleep function are injectable so tests need no real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

_EPSILON = 1e-9

#: Default token cost of one request.
REQUEST_COST_TOKENS = 10


@dataclass(frozen=True, slots=True)
class RateTier:
    name: str
    read_tokens_per_s: float
    read_capacity_s: float
    write_tokens_per_s: float

    @property
    def requests_per_s(self) -> float:
        return self.read_tokens_per_s / REQUEST_COST_TOKENS

    @property
    def burst_requests(self) -> float:
        return self.requests_per_s * self.read_capacity_s


#: Kalshi usage tiers (docs lastmod 2026-08-19): read/write tokens per second, read capacity in seconds of budget.
RATE_TIERS: dict[str, RateTier] = {
    t.name: t
    for t in (
        RateTier("basic", 200, 2, 100),
        RateTier("advanced", 300, 2, 300),
        RateTier("expert", 600, 1, 600),
        RateTier("premier", 1000, 1, 1000),
        RateTier("paragon", 2000, 1, 2000),
        RateTier("prime", 4000, 1, 4000),
        RateTier("prestige", 10000, 1, 8000),
    )
}


class TokenBucket:
    """Continuous-refill token bucket: ``rate`` tokens per second, at most ``capacity`` stored; starts full.

    ``await acquire(n)`` waits (with the injected ``sleep``) until ``n`` tokens are available and takes them;
    concurrent callers are served first come, first served.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be > 0")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = asyncio.Lock()
        self.waits = 0
        self.waited_seconds = 0.0

    @classmethod
    def for_tier(
        cls,
        tier: str = "basic",
        *,
        requests_per_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> TokenBucket:
        """A bucket counted in requests for a Kalshi tier, or ``requests_per_s`` (2 s burst) when given."""
        if requests_per_s is not None:
            return cls(requests_per_s, max(1.0, 2 * requests_per_s), clock=clock, sleep=sleep)
        try:
            t = RATE_TIERS[tier.lower()]
        except KeyError:
            raise ValueError(f"unknown Kalshi rate tier {tier!r} (known: {', '.join(RATE_TIERS)})") from None
        return cls(t.requests_per_s, t.burst_requests, clock=clock, sleep=sleep)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = now

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def try_acquire(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if available now."""
        self._refill()
        if self._tokens + _EPSILON >= n:  # tolerate float rounding after a computed sleep
            self._tokens -= n
            return True
        return False

    def delay_for(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens will be available (0 when they are)."""
        self._refill()
        return max(0.0, (n - self._tokens) / self.rate)

    async def acquire(self, n: float = 1.0) -> float:
        """Wait for and take ``n`` tokens; returns the seconds waited."""
        if n > self.capacity:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.capacity}")
        waited = 0.0
        async with self._lock:
            while not self.try_acquire(n):
                delay = self.delay_for(n)
                waited += delay
                await self._sleep(delay)
        if waited:
            self.waits += 1
            self.waited_seconds += waited
        return waited

    def drain(self) -> None:
        """Empty the bucket (after a 429: the server's bucket is empty, so ours should be too)."""
        self._refill()
        self._tokens = 0.0
