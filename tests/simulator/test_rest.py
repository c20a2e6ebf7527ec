"""The REST side over real HTTP: paging, filters, errors, order books, trades, candles, faults, auth."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import httpx
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_analytics.simulator import Simulator, run_simulator
from kalshi_analytics.simulator.auth import generate_demo_key
from kalshi_analytics.simulator.units import ONE_DOLLAR, price_decimal
from tests.conftest import wait_until

from .conftest import config, on_grid, signed_headers

DOLLARS = re.compile(r"^\d\.\d{4}$")
COUNT = re.compile(r"^-?\d+\.\d{2}$")


async def page_all(http: httpx.AsyncClient, path: str, key: str, **params: object) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = ""
    seen_cursors = set()
    while True:
        r = await http.get(path, params={**params, "cursor": cursor} if cursor else params)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body[key])
        cursor = body["cursor"]
        if cursor == "":
            return items
        assert cursor not in seen_cursors
        seen_cursors.add(cursor)


async def test_paging_returns_every_market_exactly_once(sim: Simulator, http: httpx.AsyncClient) -> None:
    # new markets get listed while we page: each page still continues after the last key returned
    first = await page_all(http, "/markets", "markets", limit=7)
    tickers = [m["ticker"] for m in first]
    assert len(tickers) == len(set(tickers))
    model_tickers = [m.ticker for m in sim.model.market_list]
    assert tickers == model_tickers[: len(tickers)]
    sim.pause()
    try:
        everything = await page_all(http, "/markets", "markets", limit=7)
        assert [m["ticker"] for m in everything] == [m.ticker for m in sim.model.market_list]
        assert len(everything) == len(sim.model.market_list)
    finally:
        sim.resume()


async def test_status_filter_maps_to_response_vocabulary(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.pause()
    try:
        opened = await page_all(http, "/markets", "markets", status="open", limit=1000)
        settled = await page_all(http, "/markets", "markets", status="settled", limit=1000)
        closed = await page_all(http, "/markets", "markets", status="closed", limit=1000)
        unopened = await page_all(http, "/markets", "markets", status="unopened", limit=1000)
        counts = sim.model.status_counts()
    finally:
        sim.resume()
    assert opened
    assert {m["status"] for m in opened} == {"active"}
    assert settled
    assert {m["status"] for m in settled} == {"finalized"}
    assert {m["status"] for m in closed} <= {"closed", "determined"}
    assert {m["status"] for m in unopened} <= {"initialized"}
    assert len(opened) == counts.get("active", 0)
    assert len(settled) == counts.get("finalized", 0)
    for m in settled:
        assert m["result"] in ("yes", "no")
        assert m["settlement_value_dollars"] in ("1.0000", "0.0000")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 5000},
        {"limit": 0},
        {"limit": "ten"},
        {"status": "active"},
        {"status": "finalized"},
        {"cursor": "not-a-cursor"},
        {"status": "open", "min_close_ts": 1},
        {"mve_filter": "sometimes"},
    ],
)
async def test_bad_parameters_are_400_with_a_kalshi_error_body(
    http: httpx.AsyncClient, params: dict[str, object]
) -> None:
    r = await http.get("/markets", params=params)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_parameters"
    assert err["message"]
    assert "details" in err


async def test_unknown_things_are_404(http: httpx.AsyncClient) -> None:
    for path in ("/markets/NOPE-1", "/markets/NOPE-1/orderbook", "/events/NOPE", "/series/NOPE", "/nope"):
        r = await http.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


async def test_market_objects_use_the_current_wire_format(http: httpx.AsyncClient) -> None:
    r = await http.get("/markets", params={"status": "open", "limit": 5})
    for m in r.json()["markets"]:
        for k in ("yes_bid_dollars", "yes_ask_dollars", "no_bid_dollars", "no_ask_dollars", "last_price_dollars"):
            assert DOLLARS.match(m[k]), (k, m[k])
        for k in ("volume_fp", "open_interest_fp", "yes_bid_size_fp", "yes_ask_size_fp", "volume_24h_fp"):
            assert COUNT.match(m[k]), (k, m[k])
        assert "yes_bid" not in m  # no legacy integer fields
        assert m["price_ranges"]
        assert m["status"] == "active"
        one = await http.get(f"/markets/{m['ticker']}")
        assert one.json()["market"]["ticker"] == m["ticker"]


async def test_orderbook_invariants(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.pause()
    try:
        markets = (await http.get("/markets", params={"status": "open", "limit": 40})).json()["markets"]
        checked = 0
        for m in markets:
            book = (await http.get(f"/markets/{m['ticker']}/orderbook")).json()["orderbook_fp"]
            yes = [(Decimal(p), Decimal(c)) for p, c in book["yes_dollars"]]
            no = [(Decimal(p), Decimal(c)) for p, c in book["no_dollars"]]
            for side in (yes, no):
                prices = [p for p, _ in side]
                assert prices == sorted(prices)  # ascending, best bid last
                assert len(set(prices)) == len(prices)
                assert all(c > 0 for _, c in side)
                assert all(on_grid(p, m["price_ranges"]) for p in prices)
            if yes and no:
                assert Decimal(m["yes_ask_dollars"]) == 1 - no[-1][0]
                assert Decimal(m["no_ask_dollars"]) == 1 - yes[-1][0]
                assert Decimal(m["yes_bid_dollars"]) == yes[-1][0]
                assert yes[-1][0] + no[-1][0] < 1
                checked += 1
            model_book = sim.model.markets[m["ticker"]].book("yes")
            assert [(price_decimal(p), Decimal(c) / 100) for p, c in model_book] == yes
            top = (await http.get(f"/markets/{m['ticker']}/orderbook", params={"depth": 2})).json()["orderbook_fp"]
            assert top["yes_dollars"] == book["yes_dollars"][-2:]
        assert checked > 5
        tickers = [m["ticker"] for m in markets[:3]]
        r = await http.get("/markets/orderbooks", params=[("tickers", t) for t in tickers])
        assert [b["ticker"] for b in r.json()["orderbooks"]] == tickers
        assert (await http.get("/markets/orderbooks")).status_code == 400
        assert (await http.get(f"/markets/{tickers[0]}/orderbook", params={"depth": 101})).status_code == 400
    finally:
        sim.resume()


async def test_trades_page_newest_first_and_match_the_model(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.pause()
    try:
        trades = await page_all(http, "/markets/trades", "trades", limit=50)
        model_ids = [t.trade_id for t in reversed(sim.model.trades)]
    finally:
        sim.resume()
    assert [t["trade_id"] for t in trades] == model_ids
    assert len(trades) == sim.model.trades_generated > 0
    t = trades[0]
    assert Decimal(t["yes_price_dollars"]) + Decimal(t["no_price_dollars"]) == 1
    assert COUNT.match(t["count_fp"])
    assert t["taker_book_side"] == ("bid" if t["taker_outcome_side"] == "yes" else "ask")
    one = await http.get("/markets/trades", params={"ticker": t["ticker"], "limit": 1000})
    assert {x["ticker"] for x in one.json()["trades"]} == {t["ticker"]}


async def test_events_series_exchange(sim: Simulator, http: httpx.AsyncClient) -> None:
    events = await page_all(http, "/events", "events", limit=3, with_nested_markets="true")
    assert len(events) >= len(sim.model.event_list) - 2  # a few may have been listed meanwhile
    assert all(e["markets"] for e in events)
    e = events[0]
    one = (await http.get(f"/events/{e['event_ticker']}", params={"with_nested_markets": "true"})).json()
    assert one["event"]["event_ticker"] == e["event_ticker"]
    assert [m["ticker"] for m in one["markets"]] == [m["ticker"] for m in one["event"]["markets"]]
    series = (await http.get("/series")).json()["series"]
    assert {s["category"] for s in series} >= {"Politics", "Economics", "Sports", "Crypto", "Weather"}
    assert all(s["fee_type"] and s["fee_multiplier"] > 0 for s in series)
    politics = (await http.get("/series", params={"category": "Politics"})).json()["series"]
    assert {s["category"] for s in politics} == {"Politics"}
    s = (await http.get(f"/series/{series[0]['ticker']}")).json()["series"]
    assert s["ticker"] == series[0]["ticker"]
    status = (await http.get("/exchange/status")).json()
    assert status["exchange_active"] is True
    assert status["trading_active"] is True


async def test_candlesticks_from_simulated_history(sim: Simulator, http: httpx.AsyncClient) -> None:
    # some trading first (this test may run right after the simulator started)
    await wait_until(lambda: any(m.volume > 0 and m.candles for m in sim.model.market_list), "a traded market")
    # The clock stands still during the test: the running minute's candle must not change between requests.
    sim.pause()
    try:
        await _check_candlesticks(sim, http)
    finally:
        sim.resume()


async def _check_candlesticks(sim: Simulator, http: httpx.AsyncClient) -> None:
    m = max((m for m in sim.model.market_list if m.candles), key=lambda m: m.volume)
    assert m.volume > 0
    end = int(sim.model.now) + 60
    start = end - 3600
    path = f"/series/{m.series_ticker}/markets/{m.ticker}/candlesticks"
    r = await http.get(path, params={"start_ts": start, "end_ts": end, "period_interval": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ticker"] == m.ticker
    candles = body["candlesticks"]
    assert candles
    ends = [c["end_period_ts"] for c in candles]
    assert ends == sorted(ends)
    assert all(e % 60 == 0 for e in ends)
    assert sum(Decimal(c["volume_fp"]) for c in candles) == Decimal(m.volume) / 100
    traded = [c for c in candles if c["price"]["close_dollars"] is not None]
    assert traded
    for c in traded:
        p = c["price"]
        assert Decimal(p["low_dollars"]) <= Decimal(p["close_dollars"]) <= Decimal(p["high_dollars"])
        assert DOLLARS.match(c["yes_bid"]["close_dollars"])
    # candles whose END lies in [start_ts, end_ts]: the running hour's candle ends in the future
    hourly = await http.get(path, params={"start_ts": start, "end_ts": end + 3600, "period_interval": 60})
    assert hourly.status_code == 200
    assert sum(Decimal(c["volume_fp"]) for c in hourly.json()["candlesticks"]) == Decimal(m.volume) / 100
    for bad in ({"period_interval": 5}, {"period_interval": 1, "start_ts": "x"}, {}):
        params = {"start_ts": start, "end_ts": end, **bad}
        assert (await http.get(path, params=params)).status_code == 400
    batch = await http.get(
        "/markets/candlesticks",
        params={"market_tickers": m.ticker, "start_ts": start, "end_ts": end, "period_interval": 1},
    )
    assert batch.json()["markets"][0]["candlesticks"] == candles


async def test_429_body_has_no_retry_after(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.set_faults(rate_limit_fraction=1.0)
    try:
        r = await http.get("/markets")
    finally:
        sim.set_faults(rate_limit_fraction=0.0)
    assert r.status_code == 429
    assert r.json() == {"error": "too many requests"}
    assert "retry-after" not in r.headers
    assert not any(h.startswith("x-ratelimit") for h in r.headers)
    began = time.monotonic()
    sim.set_faults(rate_limit_storm_seconds=0.3)
    assert (await http.get("/exchange/status")).status_code == 429

    async def storm_over() -> bool:
        return (await http.get("/exchange/status")).status_code == 200

    await wait_until(storm_over, "the end of the 0.3 s storm", seconds=5)
    assert time.monotonic() - began >= 0.3, "the storm lasts its 0.3 s of real time"


async def test_token_bucket_per_client() -> None:
    async with (
        run_simulator(config(rate_limit=5.0, rate_burst=5.0, markets=5)) as limited,
        httpx.AsyncClient(base_url=limited.base_url) as http,
    ):
        codes = [(await http.get("/exchange/status")).status_code for _ in range(12)]
        assert codes[:5] == [200] * 5
        assert 429 in codes[5:]


async def test_server_errors_and_latency(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.set_faults(server_error_fraction=0.5)
    try:
        codes = [(await http.get("/exchange/status")).status_code for _ in range(60)]
    finally:
        sim.set_faults(server_error_fraction=0.0)
    errors = [c for c in codes if c >= 500]
    assert 10 < len(errors) < 50
    assert codes.count(200) + len(errors) == 60
    sim.set_faults(latency_ms=150)
    try:
        t0 = time.perf_counter()
        assert (await http.get("/exchange/status")).status_code == 200
        assert time.perf_counter() - t0 >= 0.15
    finally:
        sim.set_faults(latency_ms=0)


async def test_admin_endpoints(sim: Simulator, http: httpx.AsyncClient) -> None:
    admin = sim.admin_url
    r = await http.post(f"{admin}/faults", json={"ws_drop_fraction": 0.25})
    assert r.json()["ws_drop_fraction"] == 0.25
    assert sim.faults.ws_drop_fraction == 0.25
    assert (await http.post(f"{admin}/faults", json={"ws_drop_fraction": 2})).status_code == 400
    assert (await http.post(f"{admin}/faults", json={"no_such_fault": 1})).status_code == 400
    assert (await http.post(f"{admin}/faults/reset")).json()["ws_drop_fraction"] == 0.0
    sim.pause()  # the clock stands still: the state must be the model's, not a moment ago
    try:
        state = (await http.get(f"{admin}/state")).json()
        assert state["paused"] is True
        assert state["trades_generated"] == sim.model.trades_generated > 0
        assert state["markets"] == len(sim.model.market_list) >= 30
    finally:
        sim.resume()
    trades = (await http.get(f"{admin}/trades", params={"limit": 5})).json()
    assert len(trades["trades"]) == 5


async def test_signatures_are_verified() -> None:
    demo = generate_demo_key()
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(demo.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cfg = config(markets=5, require_auth=True, public_keys={demo.key_id: demo.public_pem})
    async with run_simulator(cfg) as s, httpx.AsyncClient(base_url=s.base_url) as http:
        path = "/trade-api/v2/markets"
        ok = await http.get("/markets", params={"limit": 2}, headers=signed_headers(private, demo.key_id, "GET", path))
        assert ok.status_code == 200
        wrong_key = signed_headers(other, demo.key_id, "GET", path)
        assert (await http.get("/markets", headers=wrong_key)).status_code == 401
        wrong_path = signed_headers(private, demo.key_id, "GET", "/markets")  # without /trade-api/v2
        assert (await http.get("/markets", headers=wrong_path)).status_code == 401
        unknown = signed_headers(private, "no-such-key", "GET", path)
        assert (await http.get("/markets", headers=unknown)).status_code == 401
        r = await http.get("/markets")  # unsigned while auth is required
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        ws_path = "/trade-api/ws/v2"
        async with websockets.connect(
            s.ws_url, additional_headers=signed_headers(private, demo.key_id, "GET", ws_path)
        ) as ws:
            await ws.send('{"id":1,"cmd":"list_subscriptions"}')
            assert '"type":"ok"' in str(await ws.recv())
        with pytest.raises(websockets.InvalidStatus) as exc:
            async with websockets.connect(
                s.ws_url, additional_headers=signed_headers(other, demo.key_id, "GET", ws_path)
            ):
                pass
        assert exc.value.response.status_code == 401


def test_price_units_round_trip() -> None:
    assert price_decimal(ONE_DOLLAR) == Decimal("1.0000")
