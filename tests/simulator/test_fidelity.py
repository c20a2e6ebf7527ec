"""Wire fidelity of the simulated exchange against Kalshi's schema (KALSHI_API.md §3–§5, spec ≥ 3.31).

Each test names the defect it guards: a required field missing, a fixed path swallowed by a ``{ticker}`` route, or a
documented filter silently ignored.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
import websockets
from starlette.routing import Match, Route

from kalshi_analytics.kalshi import EventLifecycle, parse_ws_message
from kalshi_analytics.simulator import Simulator, run_simulator
from kalshi_analytics.simulator.rest import routes

from .conftest import collect, config, send

MARKET_REQUIRED = (
    "ticker", "event_ticker", "market_type", "yes_sub_title", "no_sub_title", "created_time", "updated_time",
    "open_time", "close_time", "latest_expiration_time", "settlement_timer_seconds", "status",
    "notional_value_dollars", "yes_bid_dollars", "yes_ask_dollars", "no_bid_dollars", "no_ask_dollars",
    "yes_bid_size_fp", "yes_ask_size_fp", "last_price_dollars", "previous_yes_bid_dollars",
    "previous_yes_ask_dollars", "previous_price_dollars", "volume_fp", "volume_24h_fp", "open_interest_fp", "result",
    "can_close_early", "expiration_value", "rules_primary", "rules_secondary", "price_level_structure",
    "price_ranges", "settlement_bounds_type",
)  # fmt: skip
SERIES_REQUIRED = (
    "ticker", "frequency", "title", "category", "categories", "tags", "settlement_sources", "contract_url",
    "contract_terms_url", "fee_type", "fee_multiplier", "additional_prohibitions",
)  # fmt: skip
EVENT_REQUIRED = (
    "event_ticker", "series_ticker", "sub_title", "title", "collateral_return_type", "mutually_exclusive",
    "available_on_brokers", "settlement_sources",
)  # fmt: skip


def assert_error(r: httpx.Response, status: int = 400) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert isinstance(err["code"], str)
    assert err["code"]
    assert isinstance(err["message"], str)


# ------------------------------------------------------------------------------------------ required fields


async def test_markets_carry_every_required_field(http: httpx.AsyncClient) -> None:
    markets = (await http.get("/markets", params={"limit": 1000})).json()["markets"]
    for m in markets:
        missing = [k for k in MARKET_REQUIRED if k not in m]
        assert not missing, (m["ticker"], missing)
        # floors are not live, and MECNET events are always default (docs: settlement_bounds)
        assert m["settlement_bounds_type"] == "default"
        assert "settlement_floor_dollars" not in m


async def test_never_traded_markets_send_a_zero_last_price_as_kalshi_does(http: httpx.AsyncClient) -> None:
    # last_price_dollars is required and not nullable in the spec; recorded Kalshi data (REST 2024, WS 2026)
    # send 0 exactly when volume is 0. The client turns that into "no last price" (tests/kalshi).
    markets = (await http.get("/markets", params={"limit": 1000})).json()["markets"]
    untraded = [m for m in markets if m["volume_fp"] == "0.00"]
    assert untraded
    assert all(m["last_price_dollars"] == "0.0000" for m in untraded)
    assert all(m["last_price_dollars"] != "0.0000" for m in markets if m["volume_fp"] != "0.00")


async def test_legacy_markets_carry_the_same_new_fields() -> None:
    async with (
        run_simulator(config(legacy_format=True, markets=8)) as s,
        httpx.AsyncClient(base_url=s.base_url, timeout=10) as c,
    ):
        markets = (await c.get("/markets")).json()["markets"]
        series = (await c.get("/series")).json()["series"]
    assert all(m["settlement_bounds_type"] == "default" for m in markets)
    assert all(isinstance(m["yes_bid"], int) for m in markets)
    assert all(m["last_price"] == 0 for m in markets if m["volume"] == 0)
    assert all(s["categories"] == [s["category"]] for s in series)


async def test_series_carry_every_required_field(http: httpx.AsyncClient) -> None:
    series = (await http.get("/series")).json()["series"]
    assert series
    for s in series:
        missing = [k for k in SERIES_REQUIRED if k not in s]
        assert not missing, (s["ticker"], missing)
        assert s["category"] in s["categories"]
        assert "product_metadata" not in s  # x-omitempty unless include_product_metadata
    one = (await http.get(f"/series/{series[0]['ticker']}")).json()["series"]
    assert one["categories"] == series[0]["categories"]


async def test_events_carry_every_required_field(http: httpx.AsyncClient) -> None:
    events = (await http.get("/events", params={"with_nested_markets": "true"})).json()["events"]
    for e in events:
        missing = [k for k in EVENT_REQUIRED if k not in e]
        assert not missing, (e["event_ticker"], missing)
        assert all(m["settlement_bounds_type"] == "default" for m in e["markets"])


async def test_exchange_status_carries_the_shard_statuses(http: httpx.AsyncClient) -> None:
    body = (await http.get("/exchange/status")).json()
    assert body["exchange_active"] is True
    assert body["trading_active"] is True
    assert body["intra_exchange_transfers_active"] is True
    [shard] = body["exchange_index_statuses"]
    assert shard["exchange_index"] == 0
    assert shard["exchange_active"] is True


# -------------------------------------------------------------------------------- fixed routes before {ticker}


async def test_series_fee_changes_is_not_a_series_ticker(sim: Simulator, http: httpx.AsyncClient) -> None:
    r = await http.get("/series/fee_changes")
    assert r.status_code == 200, r.text
    assert r.json() == {"series_fee_change_arr": []}  # nothing scheduled by default
    history = (await http.get("/series/fee_changes", params={"show_historical": "true"})).json()
    changes = history["series_fee_change_arr"]
    assert {c["series_ticker"] for c in changes} == set(sim.model.series)
    for c in changes:
        assert set(c) == {"id", "series_ticker", "fee_type", "fee_multiplier", "scheduled_ts"}
        assert c["fee_type"] in ("quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat")
        assert c["scheduled_ts"].endswith("Z")
    one = (await http.get("/series/fee_changes", params={"series_ticker": "KXBTCD", "show_historical": "true"})).json()
    assert [c["series_ticker"] for c in one["series_fee_change_arr"]] == ["KXBTCD"]
    assert_error(await http.get("/series/fee_changes", params={"show_historical": "maybe"}))


async def test_events_fee_changes_is_not_an_event_ticker(http: httpx.AsyncClient) -> None:
    r = await http.get("/events/fee_changes")
    assert r.status_code == 200, r.text
    assert r.json() == {"event_fee_changes": [], "cursor": ""}
    assert (await http.get("/events/fee_changes", params={"event_ticker": "X", "limit": 5})).status_code == 200
    assert_error(await http.get("/events/fee_changes", params={"limit": 0}))
    assert_error(await http.get("/events/fee_changes", params={"limit": 1001}))
    assert_error(await http.get("/events/fee_changes", params={"cursor": "not-a-cursor"}))


async def test_multivariate_events_is_not_an_event_ticker(http: httpx.AsyncClient) -> None:
    r = await http.get("/events/multivariate")
    assert r.status_code == 200, r.text
    assert r.json() == {"events": [], "cursor": ""}  # the simulator lists no combo events
    ok = await http.get("/events/multivariate", params={"series_ticker": "KXBTCD", "with_nested_markets": "true"})
    assert ok.status_code == 200
    assert_error(await http.get("/events/multivariate", params={"series_ticker": "A", "collection_ticker": "B"}))
    assert_error(await http.get("/events/multivariate", params={"limit": 201}))
    assert_error(await http.get("/events/multivariate", params={"with_nested_markets": "yes please"}))


# --------------------------------------------------------------------------- documented filters are honoured


async def test_max_updated_ts_filters_markets(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.pause()
    try:
        distinct = sorted({int(m.updated_ts) for m in sim.model.market_list})
        assert len(distinct) > 2
        cut = distinct[len(distinct) // 2]
        got = (await http.get("/markets", params={"max_updated_ts": cut, "limit": 1000})).json()["markets"]
        want = [m.ticker for m in sim.model.market_list if int(m.updated_ts) <= cut]
        assert [m["ticker"] for m in got] == want
        assert 0 < len(want) < len(sim.model.market_list)
        both = {"min_updated_ts": cut, "max_updated_ts": cut, "limit": 1000}
        got = (await http.get("/markets", params=both)).json()["markets"]
        assert [m["ticker"] for m in got] == [m.ticker for m in sim.model.market_list if int(m.updated_ts) == cut]
    finally:
        sim.resume()
    # the updated_ts filters combine with nothing but mve_filter=exclude (and series_ticker)
    assert_error(await http.get("/markets", params={"max_updated_ts": 1, "status": "open"}))
    assert_error(await http.get("/markets", params={"max_updated_ts": 1, "min_close_ts": 1}))
    assert (await http.get("/markets", params={"max_updated_ts": 1, "mve_filter": "exclude"})).status_code == 200
    assert_error(await http.get("/markets", params={"max_updated_ts": "soon"}))


async def test_with_milestones_adds_the_milestones_field(http: httpx.AsyncClient) -> None:
    plain = (await http.get("/events", params={"limit": 3})).json()
    assert "milestones" not in plain
    body = (await http.get("/events", params={"limit": 3, "with_milestones": "true"})).json()
    assert body["milestones"] == []  # no simulated event has live-data milestones
    assert [e["event_ticker"] for e in body["events"]] == [e["event_ticker"] for e in plain["events"]]
    assert_error(await http.get("/events", params={"with_milestones": "sometimes"}))


async def test_series_tags_and_category_filters(http: httpx.AsyncClient) -> None:
    every = (await http.get("/series")).json()["series"]
    crypto = (await http.get("/series", params={"tags": "Crypto"})).json()["series"]
    assert crypto
    assert {s["ticker"] for s in crypto} == {s["ticker"] for s in every if "Crypto" in s["tags"]}
    assert len(crypto) < len(every)
    two = (await http.get("/series", params={"tags": "Crypto,Weather"})).json()["series"]
    assert {s["ticker"] for s in two} == {s["ticker"] for s in every if {"Crypto", "Weather"} & set(s["tags"])}
    assert (await http.get("/series", params={"tags": "no such tag"})).json()["series"] == []
    sports = (await http.get("/series", params={"category": "Sports"})).json()["series"]
    assert sports
    assert all("Sports" in s["categories"] for s in sports)


async def test_series_min_updated_ts_and_product_metadata(sim: Simulator, http: httpx.AsyncClient) -> None:
    created = int(next(iter(sim.model.series.values())).created_ts)
    assert (await http.get("/series", params={"min_updated_ts": created + 1})).json()["series"] == []
    assert len((await http.get("/series", params={"min_updated_ts": created})).json()["series"]) == len(
        sim.model.series
    )
    with_meta = (await http.get("/series", params={"include_product_metadata": "true"})).json()["series"]
    assert all(isinstance(s["product_metadata"], dict) for s in with_meta)


async def test_events_min_updated_ts_filters_events(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.pause()
    try:
        every = (await http.get("/events", params={"limit": 200})).json()["events"]
        stamps = sorted(e["last_updated_ts"] for e in every)
        cut_text = stamps[len(stamps) // 2]
        cut = unix(cut_text)
        got = (await http.get("/events", params={"limit": 200, "min_updated_ts": cut})).json()["events"]
        assert [e["event_ticker"] for e in got] == [
            e["event_ticker"] for e in every if unix(e["last_updated_ts"]) >= cut
        ]
        assert 0 < len(got) < len(every)
    finally:
        sim.resume()


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


# Every documented integer or boolean query parameter of every route, with a value of the wrong type: a
# parameter that is read answers 400; one silently ignored would answer 200.
MALFORMED: list[tuple[str, str, dict[str, Any]]] = [
    ("/markets", p, {}) for p in (
        "limit", "min_created_ts", "max_created_ts", "min_updated_ts", "max_updated_ts", "min_close_ts",
        "max_close_ts", "min_settled_ts", "max_settled_ts", "cursor", "status", "mve_filter",
    )
] + [
    ("/markets/trades", p, {}) for p in ("limit", "min_ts", "max_ts", "is_block_trade", "cursor")
] + [
    ("/events", p, {}) for p in (
        "limit", "with_nested_markets", "with_milestones", "min_close_ts", "min_updated_ts", "cursor", "status",
    )
] + [
    ("/events/multivariate", p, {}) for p in ("limit", "with_nested_markets", "cursor")
] + [
    ("/events/fee_changes", p, {}) for p in ("limit", "cursor")
] + [
    ("/series", p, {}) for p in ("include_product_metadata", "include_volume", "min_updated_ts", "cursor")
] + [
    ("/series/fee_changes", "show_historical", {}),
    ("/series/KXBTCD", "include_volume", {}),
    ("/markets/orderbooks", "depth", {"tickers": "{ticker}"}),
    ("/markets/{ticker}/orderbook", "depth", {}),
] + [
    ("/markets/candlesticks", p, {"market_tickers": "{ticker}", "start_ts": 0, "end_ts": 60, "period_interval": 1})
    for p in ("start_ts", "end_ts", "period_interval", "include_latest_before_start")
] + [
    ("/series/{series}/markets/{ticker}/candlesticks", p, {"start_ts": 0, "end_ts": 60, "period_interval": 1})
    for p in ("start_ts", "end_ts", "period_interval", "include_latest_before_start")
]  # fmt: skip


@pytest.mark.parametrize(("path", "param", "base"), MALFORMED, ids=[f"{p}?{q}" for p, q, _ in MALFORMED])
async def test_every_documented_parameter_is_read(
    sim: Simulator, http: httpx.AsyncClient, path: str, param: str, base: dict[str, Any]
) -> None:
    m = sim.model.market_list[-1]
    fill = {"ticker": m.ticker, "series": m.series_ticker}
    url = path.format(**fill)
    params = {k: (v.format(**fill) if isinstance(v, str) else v) for k, v in base.items()}
    assert (await http.get(url, params=params)).status_code == 200
    assert_error(await http.get(url, params={**params, param: "not-valid"}))


# ------------------------------------------------------------------------------------------------- WebSocket


async def test_new_events_are_announced_by_event_lifecycle() -> None:
    async with (
        run_simulator(config(markets=12, speed=2400, settlement_timer_seconds=(5, 10))) as s,
        websockets.connect(s.ws_url) as ws,
    ):
        await send(ws, {"id": 1, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}})
        frames = await collect(ws, 3.5)
    announced = [f for f in frames if f["type"] == "event_lifecycle"]
    assert announced, "the seed lists new events within the window"
    created = [f["msg"]["market_ticker"] for f in frames if f["type"] == "market_lifecycle_v2"]
    for f in announced:
        msg = f["msg"]
        assert set(msg) >= {"event_ticker", "exchange_index", "title", "subtitle", "collateral_return_type"}
        assert isinstance(f["seq"], int)
        event = s.model.events[msg["event_ticker"]]
        assert msg["series_ticker"] == event.series.ticker
        first = frames.index(f)
        later = [x["msg"].get("market_ticker") for x in frames[first + 1 :]]
        assert event.markets[0].ticker in later, "the event comes before its first market's creation"
        assert isinstance(parse_ws_message(json.dumps(f)), EventLifecycle)
    assert set(created) >= {m.ticker for f in announced for m in s.model.events[f["msg"]["event_ticker"]].markets}


def test_every_fixed_path_is_served_by_its_own_route(sim: Simulator) -> None:
    # Starlette takes the first matching route: a fixed path listed after a {ticker} route is unreachable
    table = [r for r in routes(sim) if isinstance(r, Route)]
    fixed = [r for r in table if "{" not in r.path]
    for route in fixed:
        scope = {"type": "http", "path": route.path, "method": "GET", "root_path": ""}
        first = next(r for r in table if r.matches(scope)[0] is not Match.NONE)
        assert first is route, f"{route.path} is answered by {first.path}"
