"""The rate limiter's storage expires entries on the calling thread: no thread per 10 ms (whose start blocked
the event loop), the same moving-window answers."""

from __future__ import annotations

import threading
import time

import pytest
from limits import parse
from limits.strategies import MovingWindowRateLimiter

from kalshi_analytics.web.limiter_storage import InlineExpiryMemoryStorage


def test_hits_start_no_thread_and_the_window_still_limits_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = InlineExpiryMemoryStorage(sweep_seconds=0.1)
    limiter = MovingWindowRateLimiter(storage)
    item = parse("3/second")
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def spy(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", spy)
    assert [limiter.hit(item, "read", "client") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.hit(item, "read", "other")  # per client
    time.sleep(1.2)
    assert limiter.hit(item, "read", "client")  # the window moved on
    # The sweep that ran on this thread dropped the expired entries; no thread was started for it.
    assert sum(len(v) for v in storage.events.values()) == 1
    assert started == []
