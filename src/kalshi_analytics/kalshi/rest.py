"""Async REST client for Kalshi's public market-data endpoints (KALSHI_API.md §3).

One pooled ``httpx.AsyncClient`` (≤ 10 connections; 5 s connect, 10 s total per attempt), a client-side token
bucket sized for the configured tier, tenacity retries of these idempotent GETs on timeouts, connection errors,
429 and 5xx (jittered exponential backoff, bounded), never on other 4xx. Requests are RSA-PSS signed when an API
key is configured. Every body is parsed by :mod:`kalshi_analytics.kalshi.wire` into domain objects.

Usage::

    async with KalshiRestClient.from_settings(settings) as client:
        async for market in client.iter_markets(status="open", series_ticker="KXFEDMENTION"):
            ...
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from kalshi_analytics.kalshi import wire
from kalshi_analytics.kalshi.answer_time import note_answer
from kalshi_analytics.kalshi.credentials import load_signer
from kalshi_analytics.kalshi.domain import (
    Candlestick,
    Event,
    EventFeeChange,
    ExchangeStatus,
    Market,
    OrderBook,
    Page,
    Series,
    SeriesFeeChange,
    Trade,
)
from kalshi_analytics.kalshi.errors import KalshiApiError, KalshiProtocolError
from kalshi_analytics.kalshi.pagination import paginate
from kalshi_analytics.kalshi.ratelimit import TokenBucket
from kalshi_analytics.kalshi.signing import KalshiAuth, KalshiSigner
from kalshi_analytics.kalshi.status import CANDLE_INTERVALS, MarketStatusFilter
from kalshi_analytics.kalshi.validation import Reason, market_problem, trade_problem
from kalshi_analytics.logs import get_logger

if TYPE_CHECKING:
    from kalshi_analytics.config import Settings

log = get_logger(__name__)
L = TypeVar("L", Market, Trade)

MAX_CONNECTIONS = 10
CONNECT_TIMEOUT_S = 5.0
TOTAL_TIMEOUT_S = 10.0
MAX_MARKETS_LIMIT = 1000
MAX_TRADES_LIMIT = 1000
MAX_EVENTS_LIMIT = 200
MAX_MULTIVARIATE_EVENTS_LIMIT = 200
MAX_FEE_CHANGES_LIMIT = 1000
MAX_TICKERS_PER_BOOK_REQUEST = 100
MAX_TICKERS_PER_CANDLE_REQUEST = 100
STATUS_BODY_CODES = frozenset({500, 503, 504})

Timestamp = int | datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded jittered exponential backoff: ``attempts`` tries, waits ~U(0, min(max_wait, initial·2^n))."""

    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 10.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(attempts=1)


def is_retryable(exc: BaseException) -> bool:
    """Timeouts, connection/transport failures, 429 and 5xx; never other 4xx or unreadable bodies."""
    if isinstance(exc, KalshiApiError):
        return exc.retryable
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError | TimeoutError)


def unix_seconds(value: Timestamp) -> int:
    """``int`` Unix seconds as-is; an aware ``datetime`` converted (naive is refused: time is UTC everywhere)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware one")
        return int(value.timestamp())
    return int(value)


def query_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None``; booleans → ``true``/``false``; datetimes → Unix seconds; lists are left to the caller."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[key] = unix_seconds(value)
        else:
            out[key] = value
    return out


def _comma(values: Sequence[str] | str | None) -> str | None:
    if values is None:
        return None
    return values if isinstance(values, str) else ",".join(values)


def _limit(value: int, maximum: int) -> int:
    if not 1 <= value <= maximum:
        raise ValueError(f"limit must be in 1..{maximum}, got {value}")
    return value


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class KalshiRestClient:
    """Async client of Kalshi's public market-data REST API. Use as an async context manager (or ``aclose()``)."""

    def __init__(
        self,
        base_url: str,
        *,
        signer: KalshiSigner | None = None,
        rate_limiter: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
        total_timeout: float = TOTAL_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``base_url`` ends in ``/trade-api/v2``; ``transport`` lets the simulator be served in-process (ASGI)."""
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.rate_limiter = rate_limiter
        self.retry = retry or RetryPolicy()
        self.total_timeout = total_timeout
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "rate_limited": 0, "errors": 0}
        #: Listed markets and trades dropped for impossible values (``kind`` = the reason); a consumer may swap in
        #: a container of its own that keeps them for good (as for the WebSocket dispatcher's ``bad_frames``).
        self.rejected: deque[KalshiProtocolError] = deque(maxlen=20)
        self._rejected_reasons: set[str] = set()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=KalshiAuth(signer) if signer else None,
            timeout=httpx.Timeout(total_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"Accept": "application/json", "User-Agent": "kalshi-analytics"},
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> KalshiRestClient:
        """Client for ``settings.api_base``, signed when key id + key file are set (``signer=`` reuses a key
        already loaded), rate-limited per tier. A key that cannot be loaded raises ``KalshiCredentialsError``."""
        if "signer" not in kwargs:
            kwargs["signer"] = load_signer(settings)
        kwargs.setdefault(
            "rate_limiter",
            TokenBucket.for_tier(settings.kalshi_rate_tier, requests_per_s=settings.kalshi_rate_limit_rps),
        )
        return cls(settings.api_base, **kwargs)

    async def __aenter__(self) -> KalshiRestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------------------------------------ transport
    async def get_raw(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """GET ``path`` (relative to the base URL) with retries; the body of a 2xx answer."""
        return await self._get(path, params)

    async def _get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        accept: Callable[[int, bytes], bool] | None = None,
    ) -> bytes:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.retry.attempts)),
            wait=wait_random_exponential(multiplier=self.retry.initial_wait, max=self.retry.max_wait),
            retry=retry_if_exception(is_retryable),
            sleep=self.retry.sleep,
            before_sleep=self._before_retry,
            reraise=True,
        )
        clean = query_params(params or {})
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path, clean, accept)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _get_once(self, path: str, params: dict[str, Any], accept: Callable[[int, bytes], bool] | None) -> bytes:
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        self.stats["requests"] += 1
        async with asyncio.timeout(self.total_timeout):
            response = await self._http.get(path, params=params)
        status = response.status_code
        if 200 <= status < 300 or (accept is not None and accept(status, response.content)):
            note_answer(response.headers)
            return response.content
        self.stats["errors"] += 1
        if status == 429:
            self.stats["rate_limited"] += 1
            if self.rate_limiter is not None:
                self.rate_limiter.drain()
        raise wire.api_error_from_body(status, response.content, method="GET", path=response.request.url.path)

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats["retries"] += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "kalshi_rest_retry",
            attempt=state.attempt_number,
            wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
            error=type(exc).__name__ if exc else None,
            detail=str(exc)[:200] if exc else None,
        )

    def _sane(self, page: Page[L], check: Callable[[L, datetime], tuple[Reason, str] | None]) -> Page[L]:
        """The page without the items holding impossible values; those go to ``rejected`` (kept, counted), as the
        WebSocket dispatcher's bad frames do. One bad market must not cost the listing."""
        now = datetime.now(UTC)
        kept = [item for item in page.items if self._refused(item, check, now) is None]
        return page if len(kept) == len(page.items) else Page(tuple(kept), page.cursor)

    def _refused(
        self, item: L, check: Callable[[L, datetime], tuple[Reason, str] | None], now: datetime
    ) -> KalshiProtocolError | None:
        """``item``'s rejection (already kept in ``rejected``), or ``None`` when it is sane."""
        verdict = check(item, now)
        if verdict is None:
            return None
        reason, detail = verdict
        raw = getattr(item, "raw", None) or _fields(item)
        exc = KalshiProtocolError(detail, json.dumps(raw, ensure_ascii=False, default=str), kind=reason)
        first = reason not in self._rejected_reasons
        self._rejected_reasons.add(reason)
        (log.warning if first else log.debug)("kalshi_rest_rejected", reason=str(reason), detail=detail)
        self.rejected.append(exc)
        return exc

    # ------------------------------------------------------------------------------------------------- markets
    async def get_markets(
        self,
        *,
        status: MarketStatusFilter | str | None = None,
        series_ticker: str | None = None,
        event_ticker: str | None = None,
        tickers: Sequence[str] | str | None = None,
        min_created_ts: Timestamp | None = None,
        max_created_ts: Timestamp | None = None,
        min_updated_ts: Timestamp | None = None,
        max_updated_ts: Timestamp | None = None,
        min_close_ts: Timestamp | None = None,
        max_close_ts: Timestamp | None = None,
        min_settled_ts: Timestamp | None = None,
        max_settled_ts: Timestamp | None = None,
        mve_filter: str | None = None,
        limit: int = MAX_MARKETS_LIMIT,
        cursor: str | None = None,
    ) -> Page[Market]:
        """One page of ``GET /markets``; ``status`` is a *filter* value (open → active markets, see status.py)."""
        params = {
            "status": str(status) if status is not None else None,
            "series_ticker": series_ticker,
            "event_ticker": event_ticker,
            "tickers": _comma(tickers),
            "min_created_ts": min_created_ts,
            "max_created_ts": max_created_ts,
            "min_updated_ts": min_updated_ts,
            "max_updated_ts": max_updated_ts,
            "min_close_ts": min_close_ts,
            "max_close_ts": max_close_ts,
            "min_settled_ts": min_settled_ts,
            "max_settled_ts": max_settled_ts,
            "mve_filter": mve_filter,
            "limit": _limit(limit, MAX_MARKETS_LIMIT),
            "cursor": cursor,
        }
        return self._sane(wire.parse_markets_page(await self._get("/markets", params)), market_problem)

    def iter_markets(self, *, max_pages: int | None = None, **filters: Any) -> AsyncIterator[Market]:
        """Every market matching ``filters`` (the keyword arguments of :meth:`get_markets`), page after page."""
        filters.pop("cursor", None)

        async def fetch(cursor: str | None) -> Page[Market]:
            return await self.get_markets(cursor=cursor, **filters)

        return paginate(fetch, max_pages=max_pages)

    async def get_market(self, ticker: str) -> Market:
        """One market; raises :class:`KalshiProtocolError` (``kind`` = the reason, kept in ``rejected``) when it
        holds impossible values."""
        m = wire.parse_market(await self._get(f"/markets/{ticker}"))
        bad = self._refused(m, market_problem, datetime.now(UTC))
        if bad is not None:
            raise bad
        return m

    async def get_market_orderbook(self, ticker: str, depth: int | None = None) -> OrderBook:
        """Bids-only book, each side ascending (``depth`` = best N levels per side; None/0 = all)."""
        body = await self._get(f"/markets/{ticker}/orderbook", {"depth": depth})
        return wire.parse_orderbook(body, ticker)

    async def get_orderbooks(self, tickers: Sequence[str]) -> list[OrderBook]:
        """Books of many markets (``GET /markets/orderbooks``, requested 100 tickers at a time)."""
        books: list[OrderBook] = []
        for chunk in _chunks(list(tickers), MAX_TICKERS_PER_BOOK_REQUEST):
            books.extend(wire.parse_orderbooks(await self._get("/markets/orderbooks", {"tickers": list(chunk)})))
        return books

    # -------------------------------------------------------------------------------------------------- trades
    async def get_trades(
        self,
        *,
        ticker: str | None = None,
        min_ts: Timestamp | None = None,
        max_ts: Timestamp | None = None,
        is_block_trade: bool | None = None,
        limit: int = MAX_TRADES_LIMIT,
        cursor: str | None = None,
    ) -> Page[Trade]:
        params = {
            "ticker": ticker,
            "min_ts": min_ts,
            "max_ts": max_ts,
            "is_block_trade": is_block_trade,
            "limit": _limit(limit, MAX_TRADES_LIMIT),
            "cursor": cursor,
        }
        return self._sane(wire.parse_trades_page(await self._get("/markets/trades", params)), trade_problem)

    def iter_trades(self, *, max_pages: int | None = None, **filters: Any) -> AsyncIterator[Trade]:
        """Every trade matching ``filters`` (the keyword arguments of :meth:`get_trades`)."""
        filters.pop("cursor", None)

        async def fetch(cursor: str | None) -> Page[Trade]:
            return await self.get_trades(cursor=cursor, **filters)

        return paginate(fetch, max_pages=max_pages)

    # -------------------------------------------------------------------------------------------------- events
    async def get_events(
        self,
        *,
        status: MarketStatusFilter | str | None = None,
        series_ticker: str | None = None,
        tickers: Sequence[str] | str | None = None,
        with_nested_markets: bool | None = None,
        min_close_ts: Timestamp | None = None,
        min_updated_ts: Timestamp | None = None,
        limit: int = MAX_EVENTS_LIMIT,
        cursor: str | None = None,
    ) -> Page[Event]:
        params = {
            "status": str(status) if status is not None else None,
            "series_ticker": series_ticker,
            "tickers": _comma(tickers),
            "with_nested_markets": with_nested_markets,
            "min_close_ts": min_close_ts,
            "min_updated_ts": min_updated_ts,
            "limit": _limit(limit, MAX_EVENTS_LIMIT),
            "cursor": cursor,
        }
        return wire.parse_events_page(await self._get("/events", params))

    def iter_events(self, *, max_pages: int | None = None, **filters: Any) -> AsyncIterator[Event]:
        """Every event matching ``filters`` (the keyword arguments of :meth:`get_events`)."""
        filters.pop("cursor", None)

        async def fetch(cursor: str | None) -> Page[Event]:
            return await self.get_events(cursor=cursor, **filters)

        return paginate(fetch, max_pages=max_pages)

    async def get_event(self, event_ticker: str, *, with_nested_markets: bool = True) -> Event:
        """One event with its markets (nested or from the deprecated top-level ``markets``)."""
        body = await self._get(f"/events/{event_ticker}", {"with_nested_markets": with_nested_markets})
        return wire.parse_event(body)

    async def get_multivariate_events(
        self,
        *,
        series_ticker: str | None = None,
        collection_ticker: str | None = None,
        with_nested_markets: bool | None = None,
        limit: int = MAX_MULTIVARIATE_EVENTS_LIMIT,
        cursor: str | None = None,
    ) -> Page[Event]:
        """One page of combo (MVE) events, which ``GET /events`` leaves out; filter by series *or* collection."""
        params = {
            "series_ticker": series_ticker,
            "collection_ticker": collection_ticker,
            "with_nested_markets": with_nested_markets,
            "limit": _limit(limit, MAX_MULTIVARIATE_EVENTS_LIMIT),
            "cursor": cursor,
        }
        return wire.parse_multivariate_events(await self._get("/events/multivariate", params))

    def iter_multivariate_events(self, *, max_pages: int | None = None, **filters: Any) -> AsyncIterator[Event]:
        filters.pop("cursor", None)

        async def fetch(cursor: str | None) -> Page[Event]:
            return await self.get_multivariate_events(cursor=cursor, **filters)

        return paginate(fetch, max_pages=max_pages)

    async def get_event_fee_changes(
        self, *, event_ticker: str | None = None, limit: int = MAX_FEE_CHANGES_LIMIT, cursor: str | None = None
    ) -> Page[EventFeeChange]:
        params = {"event_ticker": event_ticker, "limit": _limit(limit, MAX_FEE_CHANGES_LIMIT), "cursor": cursor}
        return wire.parse_event_fee_changes(await self._get("/events/fee_changes", params))

    def iter_event_fee_changes(self, *, max_pages: int | None = None, **filters: Any) -> AsyncIterator[EventFeeChange]:
        filters.pop("cursor", None)

        async def fetch(cursor: str | None) -> Page[EventFeeChange]:
            return await self.get_event_fee_changes(cursor=cursor, **filters)

        return paginate(fetch, max_pages=max_pages)

    # -------------------------------------------------------------------------------------------------- series
    async def get_series_fee_changes(
        self, *, series_ticker: str | None = None, show_historical: bool | None = None
    ) -> list[SeriesFeeChange]:
        """Scheduled series fee changes (past ones too with ``show_historical``)."""
        params = {"series_ticker": series_ticker, "show_historical": show_historical}
        return wire.parse_series_fee_changes(await self._get("/series/fee_changes", params))

    async def get_series(self, series_ticker: str, *, include_volume: bool | None = None) -> Series:
        return wire.parse_series(await self._get(f"/series/{series_ticker}", {"include_volume": include_volume}))

    async def get_series_list(
        self,
        *,
        category: str | None = None,
        tags: Sequence[str] | str | None = None,
        include_product_metadata: bool | None = None,
        include_volume: bool | None = None,
        min_updated_ts: Timestamp | None = None,
    ) -> list[Series]:
        """``GET /series`` (follows a cursor if the server sends one; the spec has none)."""
        params = {
            "category": category,
            "tags": _comma(tags),
            "include_product_metadata": include_product_metadata,
            "include_volume": include_volume,
            "min_updated_ts": min_updated_ts,
        }

        async def fetch(cursor: str | None) -> Page[Series]:
            return wire.parse_series_list(await self._get("/series", {**params, "cursor": cursor}))

        return [s async for s in paginate(fetch)]

    # --------------------------------------------------------------------------------------------- candlesticks
    async def get_market_candlesticks(
        self,
        series_ticker: str,
        ticker: str,
        *,
        start_ts: Timestamp,
        end_ts: Timestamp,
        period_interval: int,
        include_latest_before_start: bool | None = None,
    ) -> list[Candlestick]:
        """Candles whose end lies in [start_ts, end_ts]; ``period_interval`` ∈ {1, 60, 1440} minutes."""
        if period_interval not in CANDLE_INTERVALS:
            raise ValueError(f"period_interval must be one of {sorted(CANDLE_INTERVALS)}, got {period_interval}")
        params = {
            "start_ts": unix_seconds(start_ts),
            "end_ts": unix_seconds(end_ts),
            "period_interval": period_interval,
            "include_latest_before_start": include_latest_before_start,
        }
        body = await self._get(f"/series/{series_ticker}/markets/{ticker}/candlesticks", params)
        return wire.parse_candlesticks(body)

    async def get_batch_candlesticks(
        self,
        tickers: Sequence[str],
        *,
        start_ts: Timestamp,
        end_ts: Timestamp,
        period_interval: int,
        include_latest_before_start: bool | None = None,
    ) -> dict[str, list[Candlestick]]:
        """``GET /markets/candlesticks`` for many markets (100 tickers per request) → ``{ticker: candles}``."""
        if period_interval < 1:
            raise ValueError("period_interval must be >= 1")
        out: dict[str, list[Candlestick]] = {}
        for chunk in _chunks(list(tickers), MAX_TICKERS_PER_CANDLE_REQUEST):
            params = {
                "market_tickers": _comma(chunk),
                "start_ts": unix_seconds(start_ts),
                "end_ts": unix_seconds(end_ts),
                "period_interval": period_interval,
                "include_latest_before_start": include_latest_before_start,
            }
            out.update(wire.parse_batch_candlesticks(await self._get("/markets/candlesticks", params)))
        return out

    # ------------------------------------------------------------------------------------------------ exchange
    async def get_exchange_status(self) -> ExchangeStatus:
        """``GET /exchange/status``; a 500/503/504 carrying a status body is an answer, not an error."""
        return wire.parse_exchange_status(await self._get("/exchange/status", accept=_is_status_body))


def _is_status_body(status: int, body: bytes) -> bool:
    return status in STATUS_BODY_CODES and b"exchange_active" in body


def _fields(item: Any) -> Any:
    """A domain object without its raw JSON (a trade): its values, so what was dropped can still be read."""
    return dataclasses.asdict(item) if dataclasses.is_dataclass(item) and not isinstance(item, type) else repr(item)
