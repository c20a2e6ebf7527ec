"""REST endpoints of the simulated exchange under ``/trade-api/v2`` (KALSHI_API.md §3), plus the ``/_sim`` admin API.

Lists page by an opaque base64 cursor holding the last key returned (market/event creation index, trade
index), so a walk through the pages returns every item exactly once even while new markets are listed.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi_analytics.simulator import wire
from kalshi_analytics.simulator.fee_changes import fee_change_routes
from kalshi_analytics.simulator.model import Event, Market, Trade
from kalshi_analytics.simulator.params import (
    ApiError,
    api_handler,
    bad,
    bool_param,
    comma_list,
    decode_cursor,
    encode_cursor,
    error_response,
    int_param,
    not_found,
)

if TYPE_CHECKING:
    from kalshi_analytics.simulator.server import Simulator

API = "/trade-api/v2"
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "unopened": ("initialized",),
    "open": ("active",),
    "paused": ("inactive",),
    "closed": ("closed", "determined", "disputed", "amended"),
    "settled": ("finalized",),
}
PERIODS = (1, 60, 1440)
MAX_CANDLES = 10_000


# ------------------------------------------------------------------------------------------------ handlers


def routes(sim: Simulator) -> list[Route]:  # noqa: PLR0915 - one closure per endpoint reads best here
    model = sim.model
    legacy = sim.config.legacy_format

    def market(ticker: str) -> Market:
        m = model.markets.get(ticker)
        if m is None:
            raise not_found("market")
        return m

    async def get_markets(request: Request) -> Response:  # noqa: PLR0912, PLR0915 - Kalshi's filter table
        q = request.query_params
        limit = int_param(q, "limit", 100, 1, 1000)
        assert limit is not None
        after = decode_cursor(q.get("cursor"), "m")
        status = q.get("status") or None
        if status is not None and status not in STATUS_FILTERS:
            raise bad(f"status must be one of {', '.join(STATUS_FILTERS)}")
        ts = {
            k: int_param(q, k, None, 0)
            for k in (
                "min_created_ts",
                "max_created_ts",
                "min_updated_ts",
                "max_updated_ts",
                "min_close_ts",
                "max_close_ts",
                "min_settled_ts",
                "max_settled_ts",
            )
        }
        created = ts["min_created_ts"] is not None or ts["max_created_ts"] is not None
        closing = ts["min_close_ts"] is not None or ts["max_close_ts"] is not None
        settled = ts["min_settled_ts"] is not None or ts["max_settled_ts"] is not None
        if created and status not in (None, "unopened", "open"):
            raise bad("created_ts filters are only compatible with status unopened or open")
        if closing and status not in (None, "closed"):
            raise bad("close_ts filters are only compatible with status closed")
        if settled and status not in (None, "settled"):
            raise bad("settled_ts filters are only compatible with status settled")
        mve = q.get("mve_filter") or None
        if mve not in (None, "only", "exclude"):
            raise bad("mve_filter must be only or exclude")
        updated = ts["min_updated_ts"] is not None or ts["max_updated_ts"] is not None
        if updated and (status or created or closing or settled or mve == "only"):
            raise bad("updated_ts filters combine only with series_ticker and mve_filter=exclude")
        series = q.get("series_ticker") or None
        events = comma_list(q, "event_ticker")
        if events is not None and len(events) > 10:
            raise bad("at most 10 event tickers")
        tickers = comma_list(q, "tickers")
        wanted = STATUS_FILTERS[status] if status else None

        def match(m: Market) -> bool:  # noqa: PLR0911, PLR0912 - one test per filter
            if wanted is not None and m.status not in wanted:
                return False
            if series is not None and m.series_ticker != series:
                return False
            if events is not None and m.event_ticker not in events:
                return False
            if tickers is not None and m.ticker not in tickers:
                return False
            if ts["min_created_ts"] is not None and m.created_ts < ts["min_created_ts"]:
                return False
            if ts["max_created_ts"] is not None and m.created_ts > ts["max_created_ts"]:
                return False
            # at the second resolution of the updated_time a client sees
            if ts["min_updated_ts"] is not None and int(m.updated_ts) < ts["min_updated_ts"]:
                return False
            if ts["max_updated_ts"] is not None and int(m.updated_ts) > ts["max_updated_ts"]:
                return False
            if ts["min_close_ts"] is not None and m.close_ts < ts["min_close_ts"]:
                return False
            if ts["max_close_ts"] is not None and m.close_ts > ts["max_close_ts"]:
                return False
            if settled:
                if m.settled_ts is None:
                    return False
                if ts["min_settled_ts"] is not None and m.settled_ts < ts["min_settled_ts"]:
                    return False
                if ts["max_settled_ts"] is not None and m.settled_ts > ts["max_settled_ts"]:
                    return False
            return True

        out: list[Market] = []
        more = False
        if mve != "only":
            if tickers is not None:
                candidates = sorted((model.markets[t] for t in tickers if t in model.markets), key=lambda m: m.index)
            else:
                candidates = model.market_list[(after + 1 if after is not None else 0) :]
            for m in candidates:
                if after is not None and m.index <= after:
                    continue
                if match(m):
                    if len(out) == limit:
                        more = True
                        break
                    out.append(m)
        cursor = encode_cursor("m", out[-1].index) if more else ""
        return JSONResponse({"markets": [wire.market_json(m, legacy) for m in out], "cursor": cursor})

    async def get_market(request: Request) -> Response:
        return JSONResponse({"market": wire.market_json(market(request.path_params["ticker"]), legacy)})

    async def get_orderbook(request: Request) -> Response:
        m = market(request.path_params["ticker"])
        depth = int_param(request.query_params, "depth", 0, None, 100) or 0
        return JSONResponse(wire.orderbook_json(m, max(depth, 0), legacy))

    async def get_orderbooks(request: Request) -> Response:
        q = request.query_params
        tickers = [t for v in q.getlist("tickers") for t in v.split(",") if t]
        if not 1 <= len(tickers) <= 100:
            raise bad("tickers: between 1 and 100 market tickers")
        depth = int_param(q, "depth", 0, None, 100) or 0
        books = []
        for t in tickers:
            body = wire.orderbook_json(market(t), max(depth, 0), legacy)
            books.append({"ticker": t, **body})
        return JSONResponse({"orderbooks": books})

    async def get_trades(request: Request) -> Response:
        q = request.query_params
        limit = int_param(q, "limit", 100, 1, 1000)
        assert limit is not None
        before = decode_cursor(q.get("cursor"), "t")
        ticker = q.get("ticker") or None
        min_ts = int_param(q, "min_ts", None, 0)
        max_ts = int_param(q, "max_ts", None, 0)
        block = q.get("is_block_trade")
        if block not in (None, "", "true", "false"):
            raise bad("is_block_trade must be true or false")
        out: list[Trade] = []
        more = False
        if block != "true":  # the simulator prints no block trades
            trades = model.trades
            end = len(trades) if before is None else max(0, min(len(trades), before - model.trades_offset))
            for i in range(end - 1, -1, -1):  # newest first
                t = trades[i]
                if min_ts is not None and t.ts_ms < min_ts * 1000:
                    break
                if max_ts is not None and t.ts_ms > max_ts * 1000 + 999:
                    continue
                if ticker is not None and t.market.ticker != ticker:
                    continue
                if len(out) == limit:
                    more = True
                    break
                out.append(t)
        cursor = encode_cursor("t", out[-1].index) if more else ""
        return JSONResponse({"trades": [wire.trade_json(t, legacy) for t in out], "cursor": cursor})

    async def get_events(request: Request) -> Response:
        q = request.query_params
        limit = int_param(q, "limit", 200, 1, 200)
        assert limit is not None
        after = decode_cursor(q.get("cursor"), "e")
        status = q.get("status") or None
        if status is not None and status not in ("unopened", "open", "closed", "settled"):
            raise bad("status must be one of unopened, open, closed, settled")
        nested = bool_param(q, "with_nested_markets")
        milestones = bool_param(q, "with_milestones")
        series = q.get("series_ticker") or None
        tickers = comma_list(q, "tickers")
        min_close = int_param(q, "min_close_ts", None, 0)
        min_updated = int_param(q, "min_updated_ts", None, 0)
        wanted = STATUS_FILTERS[status] if status else None
        out: list[Event] = []
        more = False
        for e in model.event_list[(after + 1 if after is not None else 0) :]:
            if series is not None and e.series.ticker != series:
                continue
            if tickers is not None and e.event_ticker not in tickers:
                continue
            if wanted is not None and not any(m.status in wanted for m in e.markets):
                continue
            if min_close is not None and not any(m.close_ts >= min_close for m in e.markets):
                continue
            if min_updated is not None and e.last_updated_ts() < min_updated:
                continue
            if len(out) == limit:
                more = True
                break
            out.append(e)
        cursor = encode_cursor("e", out[-1].index) if more else ""
        body: dict[str, Any] = {"events": [wire.event_json(e, nested, legacy) for e in out], "cursor": cursor}
        if milestones:  # no simulated event has live-data milestones
            body["milestones"] = []
        return JSONResponse(body)

    async def get_multivariate_events(request: Request) -> Response:
        q = request.query_params
        int_param(q, "limit", 100, 1, 200)
        decode_cursor(q.get("cursor"), "e")
        bool_param(q, "with_nested_markets")
        if q.get("series_ticker") and q.get("collection_ticker"):
            raise bad("series_ticker and collection_ticker cannot be used together")
        # the simulator lists no combo (MVE) events, so every filter matches nothing
        return JSONResponse({"events": [], "cursor": ""})

    async def get_event(request: Request) -> Response:
        e = model.events.get(request.path_params["event_ticker"])
        if e is None:
            raise not_found("event")
        nested = bool_param(request.query_params, "with_nested_markets")
        return JSONResponse(
            {"event": wire.event_json(e, nested, legacy), "markets": [wire.market_json(m, legacy) for m in e.markets]}
        )

    async def get_series_list(request: Request) -> Response:
        q = request.query_params
        decode_cursor(q.get("cursor"), "s")  # the list is never paged, so no cursor is ever valid
        category = q.get("category") or None
        tags = comma_list(q, "tags")  # UNCERTAIN in the spec: read as a comma list, any tag matching
        include_volume = bool_param(q, "include_volume")
        include_metadata = bool_param(q, "include_product_metadata")
        min_updated = int_param(q, "min_updated_ts", None, 0)
        out = [
            wire.series_json(s, include_volume, include_metadata)
            for s in model.series.values()
            if (category is None or category in wire.series_categories(s))
            and (tags is None or not set(tags).isdisjoint(wire.series_tags(s)))
            and (min_updated is None or s.created_ts >= min_updated)
        ]
        return JSONResponse({"series": out})

    async def get_series(request: Request) -> Response:
        s = model.series.get(request.path_params["series_ticker"])
        if s is None:
            raise not_found("series")
        q = request.query_params
        body = wire.series_json(s, bool_param(q, "include_volume"), bool_param(q, "include_product_metadata"))
        return JSONResponse({"series": body})

    def candle_params(q: Any, batch: bool) -> tuple[int, int, int]:
        start = int_param(q, "start_ts", None, 0)
        end = int_param(q, "end_ts", None, 0)
        period = int_param(q, "period_interval", None, 1)
        if start is None or end is None or period is None:
            raise bad("start_ts, end_ts and period_interval are required")
        if not batch and period not in PERIODS:
            raise bad("period_interval must be 1, 60 or 1440")
        if batch and period not in PERIODS:
            raise bad("period_interval must be 1, 60 or 1440")
        if end < start:
            raise bad("end_ts must not be before start_ts")
        if (end - start) // (period * 60) > MAX_CANDLES:
            raise bad(f"at most {MAX_CANDLES} candlesticks per request")
        return start, end, period

    async def get_candles(request: Request) -> Response:
        m = market(request.path_params["ticker"])
        if m.series_ticker != request.path_params["series_ticker"]:
            raise not_found("market")
        start, end, period = candle_params(request.query_params, batch=False)
        latest = bool_param(request.query_params, "include_latest_before_start")
        return JSONResponse({"ticker": m.ticker, "candlesticks": candles(m, start, end, period, latest)})

    async def get_candles_batch(request: Request) -> Response:
        q = request.query_params
        tickers = comma_list(q, "market_tickers")
        if not tickers or len(tickers) > 100:
            raise bad("market_tickers: between 1 and 100 market tickers")
        start, end, period = candle_params(q, batch=True)
        latest = bool_param(q, "include_latest_before_start")
        out = [{"market_ticker": t, "candlesticks": candles(market(t), start, end, period, latest)} for t in tickers]
        return JSONResponse({"markets": out})

    def candles(m: Market, start: int, end: int, period: int, latest: bool) -> list[dict[str, Any]]:
        span = period * 60
        now_end = (int(model.now) // 60 + 1) * 60
        last_end = min(end, now_end + span, int(m.close_ts) // 60 * 60 + 60 + span)
        first_end = (start + span - 1) // span * span
        if first_end > last_end:
            return []
        keys = list(m.candles)  # minute ends, ascending (inserted in time order)
        i = bisect.bisect_right(keys, first_end - span)
        prev_row = m.candles[keys[i - 1]] if i > 0 else None
        bid = prev_row[3] if prev_row else None
        ask = prev_row[7] if prev_row else None
        oi = prev_row[14] if prev_row else 0
        previous: int | None = None
        for k in keys[:i]:  # last traded price before the window
            if m.candles[k][11] is not None:
                previous = m.candles[k][11]
        out: list[dict[str, Any]] = []
        if latest and previous is not None:
            row: list[int | None] = [bid, bid, bid, bid, ask, ask, ask, ask, None, None, None, None, 0, 0, oi]
            out.append(wire.candle_json(first_end, row, previous, legacy))
        e = first_end
        while e <= last_end:
            rows = []
            while i < len(keys) and keys[i] <= e:
                rows.append(m.candles[keys[i]])
                i += 1
            if rows or bid is not None:
                out.append(wire.candle_json(e, _aggregate(rows, bid, ask, oi), previous, legacy))
                if rows:
                    bid, ask, oi = rows[-1][3], rows[-1][7], rows[-1][14]
                    traded = [r[11] for r in rows if r[11] is not None]
                    if traded:
                        previous = traded[-1]
            e += span
        return out

    async def exchange_status(request: Request) -> Response:
        return JSONResponse(wire.exchange_status_json())

    # ---------------------------------------------------------------- admin (/_sim)

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise TypeError("expected a JSON object")
                sim.set_faults(**changes)
            except (ValueError, TypeError, ValidationError) as exc:
                return error_response(400, "invalid_parameters", "invalid faults", str(exc))
        return JSONResponse(sim.faults.model_dump())

    async def faults_reset(request: Request) -> Response:
        sim.reset_faults()
        return JSONResponse(sim.faults.model_dump())

    async def state(request: Request) -> Response:
        return JSONResponse(sim.state())

    async def message_log(request: Request) -> Response:
        q = request.query_params
        since = int_param(q, "since", 0, 0) or 0
        conn = int_param(q, "conn")
        sid = int_param(q, "sid")
        limit = int_param(q, "limit", 10_000, 1, 1_000_000) or 10_000
        dropped = q.get("dropped")
        only = None if dropped in (None, "") else dropped == "true"
        entries = []
        for e in sim.log.entries(conn, sid, since, only):
            entries.append(e.as_json())
            if len(entries) >= limit:
                break
        return JSONResponse({"total": sim.log.total, "first_index": sim.log.first_index, "entries": entries})

    async def trades_generated(request: Request) -> Response:
        q = request.query_params
        since = int_param(q, "since", 0, 0) or 0
        limit = int_param(q, "limit", 10_000, 1, 1_000_000) or 10_000
        out = []
        for t in model.trades_since(since):
            out.append({"index": t.index, "trade_id": t.trade_id, "ticker": t.ticker, "ts_ms": t.ts_ms})
            if len(out) >= limit:
                break
        return JSONResponse({"trades_generated": model.trades_generated, "trades": out})

    async def settle(request: Request) -> Response:
        ticker = request.path_params["ticker"]
        result = request.query_params.get("result", "yes")
        if result not in ("yes", "no"):
            raise bad("result must be yes or no")
        if ticker not in model.markets:
            raise not_found("market")
        try:
            m = sim.settle(ticker, result, finalize=bool_param(request.query_params, "finalize"))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return JSONResponse({"market": wire.market_json(m, legacy)})

    async def inject(request: Request) -> Response:
        text = (await request.body()).decode("utf-8", errors="replace")
        return JSONResponse({"connections": sim.inject_ws_frame(text)})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            paused = request.query_params.get("paused")
            if paused is not None:
                sim.pause() if paused == "true" else sim.resume()
        return JSONResponse({"paused": sim.paused, "now_ts": model.now, "speed": sim.config.speed})

    h = api_handler

    async def portfolio_balance(request: Request) -> Response:
        # Private on Kalshi even when market data is public; the front door has already verified any signature.
        if "kalshi-access-key" not in request.headers:
            raise ApiError(401, "unauthorized", "authentication required")
        return JSONResponse({"balance": 0, "portfolio_value": 0, "updated_ts": int(model.now)})

    return [
        Route(f"{API}/markets", h(get_markets)),
        Route(f"{API}/markets/trades", h(get_trades)),
        Route(f"{API}/markets/orderbooks", h(get_orderbooks)),
        Route(f"{API}/markets/candlesticks", h(get_candles_batch)),
        Route(f"{API}/markets/{{ticker}}", h(get_market)),
        Route(f"{API}/markets/{{ticker}}/orderbook", h(get_orderbook)),
        Route(f"{API}/events", h(get_events)),
        Route(f"{API}/events/multivariate", h(get_multivariate_events)),
        *fee_change_routes(sim),  # fixed paths: listed before the {ticker} routes they would match
        Route(f"{API}/events/{{event_ticker}}", h(get_event)),
        Route(f"{API}/series", h(get_series_list)),
        Route(f"{API}/series/{{series_ticker}}", h(get_series)),
        Route(f"{API}/series/{{series_ticker}}/markets/{{ticker}}/candlesticks", h(get_candles)),
        Route(f"{API}/exchange/status", h(exchange_status)),
        Route(f"{API}/portfolio/balance", h(portfolio_balance)),
        Route("/_sim/faults", h(faults), methods=["GET", "POST"]),
        Route("/_sim/faults/reset", h(faults_reset), methods=["POST"]),
        Route("/_sim/state", h(state)),
        Route("/_sim/log", h(message_log)),
        Route("/_sim/trades", h(trades_generated)),
        Route("/_sim/settle/{ticker}", h(settle), methods=["POST"]),
        Route("/_sim/clock", h(clock), methods=["GET", "POST"]),
        Route("/_sim/inject", h(inject), methods=["POST"]),
    ]


def _aggregate(rows: list[list[int | None]], bid: int | None, ask: int | None, oi: int | None) -> list[int | None]:
    """Roll minute candles (``MarketModel._touch_candle`` layout) into one period, opening at the carried quote."""
    out: list[int | None] = [None] * 15
    for base, carry in ((0, bid), (4, ask)):
        opens = [carry] if carry is not None else [rows[0][base]]
        highs = [r[base + 1] for r in rows] + ([carry] if carry is not None else [])
        lows = [r[base + 2] for r in rows] + ([carry] if carry is not None else [])
        out[base] = opens[0]
        out[base + 1] = max(v for v in highs if v is not None)
        out[base + 2] = min(v for v in lows if v is not None)
        out[base + 3] = rows[-1][base + 3] if rows else carry
    traded = [r for r in rows if r[8] is not None]
    if traded:
        out[8] = traded[0][8]
        out[9] = max(r[9] for r in traded if r[9] is not None)
        out[10] = min(r[10] for r in traded if r[10] is not None)
        out[11] = traded[-1][11]
    out[12] = sum(r[12] or 0 for r in rows)
    out[13] = sum(r[13] or 0 for r in rows)
    out[14] = rows[-1][14] if rows else oi
    return out
