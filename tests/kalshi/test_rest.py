"""REST client logic without a server: parameters, retry policy, pagination wiring, settings.

The HTTP exchange itself is replaced by injecting the one-attempt function (``_get_once``); real HTTP is
exercised by the integration tests against the project's simulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_analytics.config import load_settings
from kalshi_analytics.kalshi import (
    KalshiApiError,
    KalshiPaginationError,
    KalshiProtocolError,
    KalshiRestClient,
    RetryPolicy,
    is_retryable,
)
from kalshi_analytics.kalshi.credentials import KalshiCredentialsError
from kalshi_analytics.kalshi.rest import _is_status_body, query_params, unix_seconds

BASE = "http://127.0.0.1:9/trade-api/v2"


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def scripted(client: KalshiRestClient, answers: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Replace the single-attempt GET with a script of bodies (bytes) or exceptions; returns the call log."""
    calls: list[tuple[str, dict[str, Any]]] = []

    async def get_once(path: str, params: dict[str, Any], accept: Any) -> bytes:
        calls.append((path, params))
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    client._get_once = get_once  # type: ignore[method-assign]
    return calls


def test_query_params_and_timestamps() -> None:
    when = datetime(2026, 3, 19, 14, tzinfo=UTC)
    assert query_params({"a": None, "b": True, "c": False, "d": when, "e": 5, "f": ["x", "y"]}) == {
        "b": "true",
        "c": "false",
        "d": 1773928800,
        "e": 5,
        "f": ["x", "y"],
    }
    assert unix_seconds(datetime(2026, 3, 19, 16, tzinfo=timezone(timedelta(hours=2)))) == 1773928800
    with pytest.raises(ValueError, match="naive"):
        unix_seconds(datetime(2026, 3, 19))


def test_what_is_retried() -> None:
    request = httpx.Request("GET", BASE)
    for exc in (
        httpx.ConnectTimeout("t", request=request),
        httpx.ReadTimeout("t", request=request),
        httpx.ConnectError("refused", request=request),
        httpx.RemoteProtocolError("peer closed", request=request),
        TimeoutError(),
        KalshiApiError(429, message="too many requests"),
        KalshiApiError(500),
        KalshiApiError(503),
    ):
        assert is_retryable(exc), exc
    for exc in (
        KalshiApiError(400),
        KalshiApiError(401),
        KalshiApiError(404),
        KalshiProtocolError("bad"),
        ValueError(),
    ):
        assert not is_retryable(exc), exc


async def test_retries_transient_errors_with_bounded_jittered_backoff() -> None:
    sleep = FakeSleep()
    async with KalshiRestClient(BASE, retry=RetryPolicy(attempts=6, initial_wait=0.5, max_wait=10, sleep=sleep)) as c:
        request = httpx.Request("GET", BASE)
        calls = scripted(
            c,
            [
                KalshiApiError(503),
                KalshiApiError(429, message="too many requests"),
                httpx.ConnectError("refused", request=request),
                b'{"markets":[{"ticker":"A","yes_bid_dollars":"0.4200"}],"cursor":""}',
            ],
        )
        page = await c.get_markets(status="open")
    assert [m.ticker for m in page.items] == ["A"]
    assert len(calls) == 4
    assert c.stats["retries"] == 3
    assert len(sleep.waits) == 3
    assert all(0 <= w <= 10 for w in sleep.waits)


async def test_client_errors_are_not_retried_and_attempts_are_bounded() -> None:
    sleep = FakeSleep()
    async with KalshiRestClient(BASE, retry=RetryPolicy(attempts=3, sleep=sleep)) as c:
        calls = scripted(c, [KalshiApiError(404, code="not_found")])
        with pytest.raises(KalshiApiError) as info:
            await c.get_market("NOPE")
        assert info.value.status == 404
        assert len(calls) == 1
        calls = scripted(c, [KalshiApiError(502)] * 5)
        with pytest.raises(KalshiApiError) as info:
            await c.get_market("X")
        assert info.value.status == 502
        assert len(calls) == 3
        scripted(c, [b'{"market": {"tick'])
        with pytest.raises(KalshiProtocolError, match="malformed JSON"):
            await c.get_market("X")


async def test_iter_markets_passes_cursor_with_the_same_filters() -> None:
    async with KalshiRestClient(BASE) as c:
        calls = scripted(
            c,
            [
                b'{"markets":[{"ticker":"A"},{"ticker":"B"}],"cursor":"c1"}',
                b'{"markets":[{"ticker":"C"}],"cursor":null}',
            ],
        )
        tickers = [m.ticker async for m in c.iter_markets(status="open", series_ticker="KXFED", tickers=["A", "B"])]
    assert tickers == ["A", "B", "C"]
    assert [p.get("cursor") for _, p in calls] == [None, "c1"]
    for path, params in calls:
        assert path == "/markets"
        assert params["status"] == "open"
        assert params["series_ticker"] == "KXFED"
        assert params["tickers"] == "A,B"
        assert params["limit"] == 1000


async def test_iter_trades_and_events_guard_repeated_cursors() -> None:
    async with KalshiRestClient(BASE) as c:
        trade = {"trade_id": "t", "ticker": "A", "yes_price_dollars": "0.5", "count_fp": "1.00"}
        body = json.dumps({"trades": [trade], "cursor": "loop"}).encode()
        scripted(c, [body, body])
        with pytest.raises(KalshiPaginationError):
            _ = [t async for t in c.iter_trades(ticker="A", min_ts=1, max_ts=2)]
        calls = scripted(c, [b'{"events":[{"event_ticker":"E"}],"cursor":""}'])
        events = [e async for e in c.iter_events(status="settled", with_nested_markets=True)]
        assert [e.event_ticker for e in events] == ["E"]
        assert calls[0][1]["with_nested_markets"] == "true"
        assert calls[0][1]["limit"] == 200


async def test_endpoint_paths_and_validation() -> None:
    async with KalshiRestClient(BASE) as c:
        with pytest.raises(ValueError, match="limit"):
            await c.get_markets(limit=5000)
        with pytest.raises(ValueError, match="period_interval"):
            await c.get_market_candlesticks("S", "T", start_ts=0, end_ts=1, period_interval=5)
        calls = scripted(
            c,
            [
                b'{"orderbook_fp":{"yes_dollars":[["0.1","2"]],"no_dollars":null}}',
                b'{"orderbooks":[]}',
                b'{"orderbooks":[]}',
                b'{"ticker":"T","candlesticks":[]}',
                b'{"markets":[]}',
                b'{"series":{"ticker":"S"}}',
                b'{"series":[]}',
                b'{"event":{"event_ticker":"E"},"markets":[]}',
                b'{"exchange_active":true,"trading_active":true}',
            ],
        )
        book = await c.get_market_orderbook("T", depth=3)
        assert book.ticker == "T"
        assert book.best_yes_bid == Decimal("0.1")
        await c.get_orderbooks([f"T{i}" for i in range(150)])
        await c.get_market_candlesticks("S", "T", start_ts=0, end_ts=60, period_interval=1)
        await c.get_batch_candlesticks(["A", "B"], start_ts=0, end_ts=60, period_interval=60)
        await c.get_series("S")
        await c.get_series_list(category="Economics")
        await c.get_event("E")
        status = await c.get_exchange_status()
    assert status.trading_active
    paths = [p for p, _ in calls]
    assert paths == [
        "/markets/T/orderbook",
        "/markets/orderbooks",
        "/markets/orderbooks",
        "/series/S/markets/T/candlesticks",
        "/markets/candlesticks",
        "/series/S",
        "/series",
        "/events/E",
        "/exchange/status",
    ]
    assert calls[0][1] == {"depth": 3}
    assert [len(p["tickers"]) for _, p in calls[1:3]] == [100, 50]
    assert calls[4][1]["market_tickers"] == "A,B"
    assert _is_status_body(503, b'{"exchange_active":false,"trading_active":false}')
    assert not _is_status_body(503, b"<html>unavailable</html>")
    assert not _is_status_body(404, b'{"exchange_active":false}')


async def test_from_settings_signs_and_rate_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "k.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    monkeypatch.setenv("KALSHI_ENV", "demo")
    monkeypatch.setenv("KALSHI_API_KEY_ID", "key-1")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(pem))
    monkeypatch.setenv("KALSHI_RATE_TIER", "premier")
    monkeypatch.delenv("KALSHI_API_BASE", raising=False)
    monkeypatch.delenv("KALSHI_RATE_LIMIT_RPS", raising=False)
    settings = load_settings()
    async with KalshiRestClient.from_settings(settings) as c:
        assert c.base_url == settings.api_base
        assert c.signer is not None
        assert c.signer.key_id == "key-1"
        assert c.rate_limiter is not None
        assert c.rate_limiter.rate == 100
    monkeypatch.setenv("KALSHI_RATE_LIMIT_RPS", "1000")
    monkeypatch.delenv("KALSHI_API_KEY_ID")
    with pytest.raises(KalshiCredentialsError, match="set both or neither"):  # half a key is a mistake, not "unsigned"
        KalshiRestClient.from_settings(load_settings())
    monkeypatch.delenv("KALSHI_PRIVATE_KEY_PATH")
    async with KalshiRestClient.from_settings(load_settings()) as c:
        assert c.signer is None
        assert c.rate_limiter is not None
        assert c.rate_limiter.rate == 1000
