"""Charging a request to several rate-limit classes: all of them or none."""

from __future__ import annotations

from kalshi_analytics.config import load_settings
from kalshi_analytics.web.ratelimit import RateLimits

CLIENT = "203.0.113.9"


def limits(read: str, expensive: str) -> RateLimits:
    return RateLimits.from_settings(
        load_settings(api_rate_limit_enabled=True, api_rate_read=read, api_rate_expensive=expensive)
    )


def test_a_request_refused_by_one_class_is_charged_to_none() -> None:
    both = ("read", "expensive")
    by_expensive = limits("3/minute", "2/minute")
    assert [by_expensive.allow(both, CLIENT) for _ in range(3)] == [True, True, False]
    assert [by_expensive.allow(("read",), CLIENT) for _ in range(2)] == [True, False]  # the refusal took no read

    by_read = limits("2/minute", "5/minute")
    assert [by_read.allow(both, CLIENT) for _ in range(3)] == [True, True, False]
    assert [by_read.allow(("expensive",), CLIENT) for _ in range(4)] == [True, True, True, False]


def test_nothing_to_charge_and_limits_off_always_allow() -> None:
    assert limits("1/minute", "1/minute").allow((), CLIENT)
    off = RateLimits.from_settings(load_settings(api_rate_limit_enabled=False, api_rate_read="1/minute"))
    assert all(off.allow(("read",), CLIENT) for _ in range(5))
    one = limits("1/minute", "1/minute")
    assert one.allow(("read",), CLIENT)
    assert not one.allow(("read",), CLIENT)
    assert one.allow(("read",), "198.51.100.1")  # per client
