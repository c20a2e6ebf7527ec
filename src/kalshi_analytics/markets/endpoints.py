"""The markets API: list/search, detail, latest snapshot, history (raw or candles), order book, trades."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, get_args

from asyncpg import Record
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from kalshi_analytics.markets import candle_blocks, service, snapshot_chunks
from kalshi_analytics.markets.pricing import implied_probability_with_source
from kalshi_analytics.markets.schemas import (
    BookLevel,
    CandleHistory,
    MarketGap,
    MarketGapPage,
    MarketPage,
    MarketResponse,
    OrderBook,
    Snapshot,
    SnapshotPage,
    Trade,
    TradePage,
)
from kalshi_analytics.web.cache import cached
from kalshi_analytics.web.deps import API_PREFIX, reads
from kalshi_analytics.web.fast_lane import Endpoint, FastRoute, Reader, choice_reader, int_reader, text_reader
from kalshi_analytics.web.params import NO_NUL, Cursor, Limit, query_time, time_query
from kalshi_analytics.web.problems import inputs_from, problem_responses
from kalshi_analytics.web.ratelimit import charge, rate_limit
from kalshi_analytics.web.responses import JSON, Gzipped, model_json, model_response, spliced_json

ONE = Decimal(1)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)

router = APIRouter(prefix=f"{API_PREFIX}/markets", tags=["markets"], responses=problem_responses(404, 422, 429, 500))
read_limited = [Depends(rate_limit("read"))]

Ticker = Annotated[
    str, Path(min_length=1, max_length=200, pattern=NO_NUL, description="market ticker, e.g. KXHIGHNY-26NOV21-T60")
]


def spliced_gzip(head: dict[str, Any], key: str, rows: Sequence[Mapping[str, Any]]) -> tuple[Gzipped, str]:
    """:func:`spliced_json` of an array of stored blocks (candles or snapshot chunks) and live text, as one gzip
    member."""
    opening = json.dumps(head, separators=(",", ":"))[:-1] + f',"{key}":['
    body, etag = candle_blocks.assemble(opening.encode(), rows, b"]}")
    return Gzipped(body, etag), JSON


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _max_spread(request: Request) -> Decimal:
    spread: Decimal = request.app.state.settings.api_max_spread
    return spread


def _prob(row: Record | dict[str, Any], max_spread: Decimal) -> dict[str, Any]:
    p, src = implied_probability_with_source(row["yes_bid"], row["yes_ask"], row["last_price"], max_spread)
    return {"implied_probability": p, "implied_probability_source": src}


def snapshot_model(row: Record | dict[str, Any], max_spread: Decimal) -> Snapshot:
    return Snapshot.model_validate({**row, **_prob(row, max_spread)})


@router.get(
    "",
    operation_id="listMarkets",
    summary="List and search markets with their latest quote (keyset pagination).",
    response_model=MarketPage,
    dependencies=read_limited,
)
async def list_markets(
    *,
    request: Request,
    status: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="one or several comma-separated: Kalshi's filter words (unopened, open = active or "
            "inactive, paused, closed = closed to finalization, settled) or stored statuses (active, finalized, …)",
            examples=["open", "active", "open,settled"],
        ),
    ] = None,
    category: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="category, any case (sports = Sports)")
    ] = None,
    series: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="series ticker")] = None,
    event: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="event ticker")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=NO_NUL,
            description="case-insensitive search of the title and the ticker",
        ),
    ] = None,
    sort: service.MarketSort = "ticker",
    order: service.SortOrder = "asc",
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    with inputs_from("query"):
        statuses = service.statuses_for(status) if status and status.strip() else None

    async def build() -> tuple[bytes, str]:
        async with reads(request) as db:
            page, next_cursor = await service.list_markets(
                db,
                service.MarketFilter(statuses=statuses, category=category, series=series, event=event, q=q),
                sort=sort,
                order=order,
                limit=limit,
                cursor=cursor,
                max_spread=_max_spread(request),
            )
        return spliced_json({"next_cursor": next_cursor}, "items", page.items)

    with inputs_from("query"):  # a bad cursor
        return await cached(request, None, build)  # a listing depends on every market


@router.get(
    "/{ticker}",
    operation_id="getMarket",
    summary="One market: catalogue fields, latest quote, implied probability, settlement.",
    response_model=MarketResponse,
    dependencies=read_limited,
)
async def get_market(request: Request, ticker: Ticker) -> Response:
    async def build() -> tuple[bytes, str]:
        async with reads(request) as db:
            row = await service.get_market(db, ticker)
        return model_json(
            MarketResponse.model_validate(
                {
                    **row,
                    **_prob(row, _max_spread(request)),
                    "yes_price": row["yes_bid"],
                    "no_price": row["no_bid"],
                    "last_updated": row["ts"] or row["updated_at"],
                }
            )
        )

    return await cached(request, ticker, build)


def latest_cache_key(ticker: str) -> str:
    """The cache key of ``getLatestSnapshot`` without a query string (the stream hub refreshes it ahead)."""
    return f"{router.prefix}/{ticker}/latest?"


@router.get(
    "/{ticker}/latest",
    operation_id="getLatestSnapshot",
    summary="The latest recorded snapshot of a market.",
    response_model=Snapshot,
    dependencies=read_limited,
)
async def latest(request: Request, ticker: Ticker) -> Response:
    async def build() -> tuple[bytes, str]:
        async with reads(request) as db:
            row = await service.latest_snapshot(db, ticker)
        return model_json(snapshot_model(row, _max_spread(request)))

    return await cached(request, ticker, build)


@router.get(
    "/{ticker}/history",
    operation_id="getMarketHistory",
    summary="Price history in [start, end): candles (interval=1m|5m|1h|1d, 10,000 a page) or raw snapshots, "
    "cursor-paginated; an empty answer gives the market's first and last recorded times (data_start, data_end).",
    response_model=CandleHistory | SnapshotPage,
    dependencies=read_limited,
)
async def history(
    *,
    request: Request,
    ticker: Ticker,
    start: Annotated[str | None, time_query("inclusive; default end − 1 day")] = None,
    end: Annotated[str | None, time_query("exclusive; default now")] = None,
    interval: Annotated[service.Interval | None, Query(description="candle size; omit for raw snapshots")] = None,
    limit: Limit = 1000,
    cursor: Cursor = None,
) -> Response:
    asked = query_time(request, "start", start), query_time(request, "end", end)
    with inputs_from("query"):
        start_, end_ = service.window(*asked)

    async def span(db: service.Db) -> dict[str, str | None]:
        # An empty answer says where the market's data is (the default window is only the last day).
        first, last = await service.data_span(db, ticker)
        return {"data_start": None if first is None else _iso(first), "data_end": None if last is None else _iso(last)}

    if interval is not None:
        step = interval

        async def candles() -> tuple[bytes | Gzipped, str]:
            async with reads(request) as db:
                array, next_cursor = await service.candles(db, ticker, step, start_, end_, cursor=cursor)
                head: dict[str, Any] = {
                    "ticker": ticker,
                    "interval": step,
                    "start": _iso(start_),
                    "end": _iso(end_),
                    "next_cursor": next_cursor,
                }
                if array == "[]" and cursor is None:
                    head |= await span(db)
            if isinstance(array, service.CandleBlocks):
                return spliced_gzip(head, "candles", array.rows)
            return spliced_json(head, "candles", array)

        # Without `end` the window follows the clock: such an answer is reused only briefly.
        with inputs_from("query"):  # a bad cursor
            return await cached(request, ticker, candles, volatile=end is None, horizon=end_)
    charge(request, "expensive")  # a raw page is up to 1000 rows: the expensive class, on top of "read"

    async def raw() -> tuple[bytes | Gzipped, str]:
        async with reads(request) as db:
            page, next_cursor = await service.snapshot_page(
                db, ticker, start=start_, end=end_, limit=limit, cursor=cursor, max_spread=_max_spread(request)
            )
            head: dict[str, Any] = {"ticker": ticker, "next_cursor": next_cursor}
            if isinstance(page, snapshot_chunks.ChunkPage):  # stored chunks of closed hours: assembled
                return spliced_gzip(head, "items", page.pieces)
            if page.count == 0 and cursor is None:
                head |= await span(db)
        return spliced_json(head, "items", page.items)

    with inputs_from("query"):  # a bad cursor
        return await cached(request, ticker, raw, volatile=end is None, horizon=end_)


@router.get(
    "/{ticker}/orderbook",
    operation_id="getOrderBook",
    summary="The latest recorded order book, or the one in force at `at`.",
    response_model=OrderBook,
    dependencies=read_limited,
)
async def get_orderbook(
    request: Request,
    ticker: Ticker,
    depth: Annotated[int, Query(ge=1, le=1000, description="levels per side")] = 20,
    at: Annotated[str | None, time_query("a past moment: the book recorded at or before it")] = None,
) -> Response:
    at_ = query_time(request, "at", at)

    async def build() -> tuple[bytes, str]:
        async with reads(request) as db:
            row = await service.orderbook(db, ticker, at_)
        yes = service.levels_best_first(row["yes_prices"], row["yes_sizes"], depth)
        no = service.levels_best_first(row["no_prices"], row["no_sizes"], depth)
        return model_json(
            OrderBook(
                ticker=row["ticker"],
                ts=row["ts"],
                received_at=row["received_at"],
                source=row["source"],
                sequence=row["sequence"],
                yes=[BookLevel.model_validate(lv) for lv in yes],
                no=[BookLevel.model_validate(lv) for lv in no],
                best_yes_bid=yes[0]["price"] if yes else None,
                best_yes_ask=ONE - no[0]["price"] if no else None,
                yes_bids=[(lv["price"], lv["size"]) for lv in yes],
                yes_asks=[(ONE - lv["price"], lv["size"]) for lv in no],
            )
        )

    # A past book (`at`) depends only on books recorded at or before `at`.
    horizon = at_ + timedelta(microseconds=1) if at_ is not None and at_ < _LAST_INSTANT else None
    return await cached(request, ticker, build, horizon=horizon)


@router.get(
    "/{ticker}/trades",
    operation_id="listTrades",
    summary="Public trades of a market, newest first, cursor-paginated.",
    response_model=TradePage,
    dependencies=read_limited,
)
async def list_trades(
    *,
    request: Request,
    ticker: Ticker,
    start: Annotated[str | None, time_query("inclusive")] = None,
    end: Annotated[str | None, time_query("exclusive")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    start_, end_ = query_time(request, "start", start), query_time(request, "end", end)

    async def build() -> tuple[bytes, str]:
        async with reads(request) as db:
            rows, next_cursor = await service.trade_page(db, ticker, start=start_, end=end_, limit=limit, cursor=cursor)
        return model_json(
            TradePage(ticker=ticker, items=[Trade.model_construct(**r) for r in rows], next_cursor=next_cursor)
        )

    with inputs_from("query"):  # a bad cursor
        return await cached(request, ticker, build, horizon=end_)


@router.get(
    "/{ticker}/gaps",
    operation_id="listMarketGaps",
    summary="Recorder feed gaps that touch a market (its own, and whole-subscription ones) overlapping "
    "[start, end), oldest first, cursor-paginated; an open gap has no gap_end.",
    response_model=MarketGapPage,
    dependencies=read_limited,
)
async def list_market_gaps(
    *,
    request: Request,
    ticker: Ticker,
    start: Annotated[str | None, time_query("inclusive; default end − 1 day")] = None,
    end: Annotated[str | None, time_query("exclusive; default now")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    asked = query_time(request, "start", start), query_time(request, "end", end)
    with inputs_from("query"):
        start_, end_ = service.window(*asked)
    # Not cached: a gap about a whole subscription concerns every market, and gaps are few and indexed.
    async with reads(request) as db:
        with inputs_from("query"):  # a bad cursor
            rows, next_cursor = await service.gap_page(db, ticker, start=start_, end=end_, limit=limit, cursor=cursor)
    return model_response(
        MarketGapPage(
            ticker=ticker,
            start=start_,
            end=end_,
            items=[MarketGap.model_validate(dict(r)) for r in rows],
            next_cursor=next_cursor,
        )
    )


# The fast lane (web/fast_lane.py) of the two hottest reads, with the rules of the declarations above (Ticker,
# time_query, service.Interval, Limit, Cursor); a value outside them goes to FastAPI, which words the 422.
def _fast(name: str, endpoint: Endpoint, query: dict[str, Reader]) -> FastRoute:
    """The lane's ``/{ticker}/<name>`` route."""
    path = f"{router.prefix}/{{ticker}}/{name}"
    return FastRoute(
        route=next(r for r in router.routes if getattr(r, "path", None) == path),
        pattern=re.compile(re.escape(router.prefix) + f"/([^/]+)/{name}"),
        path_param="ticker",
        path_reader=text_reader(200),
        endpoint=endpoint,
        query=query,
    )


FAST_ROUTES = (
    _fast("latest", latest, {}),
    _fast(
        "history",
        history,
        {
            "start": text_reader(64),
            "end": text_reader(64),
            "interval": choice_reader(get_args(service.Interval)),
            "limit": int_reader(1, 1000),
            "cursor": text_reader(2000),
        },
    ),
)
