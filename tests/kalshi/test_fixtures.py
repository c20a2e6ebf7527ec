"""Every recorded Kalshi payload in ../shared/data/kalshi parses into the domain form with exact values.

(nba_candles/*.csv are pandas CSVs of candle prices, not Kalshi JSON: they belong to the backtest tests.)
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from kalshi_analytics.kalshi import (
    MarketStatus,
    OrderbookDelta,
    OrderbookSnapshot,
    SeqTracker,
    Side,
    TickerUpdate,
    TradeUpdate,
    parse_ws_message,
)
from kalshi_analytics.kalshi.wire import (
    event_from_dict,
    history_point_from_dict,
    market_from_dict,
    orderbook_from_dict,
    parse_candlesticks,
    parse_markets_page,
    parse_orderbook,
    parse_trades_page,
)

from .conftest import load_json, load_jsonl, strip_sdk_dump

D = Decimal
SSMD = "fixtures_current/ssmd_ws_capture_2026-02"
NAUTILUS = "fixtures_current/nautilus_handmade"


def _without(frame: dict, suffixes: tuple[str, ...] = (), legacy: tuple[str, ...] = ()) -> str:
    msg = {k: v for k, v in frame["msg"].items() if not k.endswith(suffixes) and k not in legacy}
    return json.dumps({**frame, "msg": msg})


# ------------------------------------------------------------------------------------------- ssmd live WS capture
def test_ssmd_ticker_frames_cents_equal_dollars(data_dir: Path) -> None:
    lines = load_jsonl(data_dir / SSMD / "kalshi_ticker.jsonl")
    assert len(lines) == 10
    for line in lines:
        raw = json.loads(line)
        m = raw["msg"]
        msg = parse_ws_message(line)
        assert isinstance(msg, TickerUpdate)
        assert msg.sid == 1
        assert msg.seq is None
        assert msg.market_ticker == m["market_ticker"]
        assert D(m["price"]) / 100 == D(m["price_dollars"])
        # a market nobody traded yet is sent with price 0 (and volume 0): no last price, not a price of $0
        assert msg.price == (D(m["price_dollars"]) if m["volume"] else None)
        assert msg.yes_bid == D(m["yes_bid"]) / 100 == D(m["yes_bid_dollars"])
        assert msg.yes_ask == D(m["yes_ask"]) / 100 == D(m["yes_ask_dollars"])
        assert msg.volume == D(m["volume"]) == D(m["volume_fp"])
        assert msg.open_interest == D(m["open_interest"]) == D(m["open_interest_fp"])
        assert msg.yes_bid_size == D(m["yes_bid_size_fp"])
        assert msg.dollar_volume == D(m["dollar_volume"])
        assert msg.ts == datetime(2026, 2, 12, 12, 6, 16, tzinfo=UTC)
        assert all(isinstance(v, Decimal) for v in (msg.yes_bid, msg.yes_ask, msg.volume))
        # the legacy-only and the current-only halves of the transitional frame give the same domain object
        legacy_only = _without(raw, suffixes=("_dollars", "_fp"))
        current_only = _without(raw, legacy=("price", "yes_bid", "yes_ask", "volume", "open_interest"))
        legacy_msg, current_msg = parse_ws_message(legacy_only), parse_ws_message(current_only)
        assert (legacy_msg.price, legacy_msg.yes_bid, legacy_msg.volume) == (msg.price, msg.yes_bid, msg.volume)
        assert current_msg == msg


def test_ssmd_ticker_edge_cases(data_dir: Path) -> None:
    msgs = [parse_ws_message(line) for line in load_jsonl(data_dir / SSMD / "kalshi_ticker.jsonl")]
    by_ticker = {m.market_ticker: m for m in msgs if isinstance(m, TickerUpdate)}
    never_traded = by_ticker["KXETHD-26FEB1217-T1779.99"]
    assert never_traded.volume == 0
    assert never_traded.price is None  # sent as "0.0000": nothing traded yet
    assert never_traded.yes_ask == D(1)
    assert never_traded.yes_ask_size == 0
    assert by_ticker["KXXRP-26FEB1317-B1.3899500"].yes_bid == D("0.04")


def test_ssmd_trade_frames_and_their_seq_gap(data_dir: Path) -> None:
    lines = load_jsonl(data_dir / SSMD / "kalshi_trade.jsonl")
    tracker = SeqTracker()
    gaps = []
    for line in lines:
        m = json.loads(line)["msg"]
        msg = parse_ws_message(line)
        assert isinstance(msg, TradeUpdate)
        t = msg.trade
        assert t.trade_id == m["trade_id"]
        assert t.ticker == m["market_ticker"]
        assert t.yes_price == D(m["yes_price"]) / 100 == D(m["yes_price_dollars"])
        assert t.no_price == D(m["no_price"]) / 100 == D(m["no_price_dollars"])
        assert t.yes_price + t.no_price == 1
        assert t.count == D(m["count"]) == D(m["count_fp"])
        assert t.taker_side is Side(m["taker_side"])
        assert t.created_time == datetime.fromtimestamp(m["ts"], UTC)
        assert msg.sid is not None
        assert msg.seq is not None
        gap = tracker.observe(msg.sid, msg.seq)
        if gap:
            gaps.append(gap)
    assert gaps == [(11, 48)]  # the sample jumps from seq 10 to 48


# ----------------------------------------------------------------------------------- landonct live REST markets
def test_landonct_markets(data_dir: Path) -> None:
    data = load_json(data_dir / "fixtures_current/landonct_rest_markets_2026-03/data.json")
    assert sorted(data, key=int) == [str(i) for i in range(46)]
    for raw in data.values():
        market = market_from_dict(raw)
        assert market.ticker.startswith("KXFEDMENTION-26MAR-")
        assert market.event_ticker == "KXFEDMENTION-26MAR"
        assert market.status is MarketStatus.ACTIVE
        assert market.yes_bid == D(raw["yes_bid_dollars"]) == D(raw["yes_bid"]) / 100
        assert market.yes_ask == D(raw["yes_ask_dollars"]) == D(raw["yes_ask"]) / 100
        assert market.no_bid == D(raw["no_bid_dollars"]) == D(raw["no_bid"]) / 100
        assert market.no_ask == D(raw["no_ask_dollars"]) == 1 - market.yes_bid
        assert market.last_price == D(raw["last_price"]) / 100
        assert market.volume == D(raw["volume_fp"]) == raw["volume"]
        assert market.open_interest == D(raw["open_interest_fp"])
        assert market.notional_value == D(1)
        assert market.tick_size == D("0.01")
        assert market.yes_ask_size == D(raw["yes_ask_size_fp"])
        assert market.price_ranges[0].step == D("0.01")
        assert market.price_ranges[0].end == 1
        assert market.custom_strike is not None
        assert "Word" in market.custom_strike
        assert market.close_time == datetime(2026, 3, 19, 14, tzinfo=UTC)
        assert market.created_time is not None
        assert market.created_time.tzinfo is UTC
        assert market.raw is raw
        legacy_keys = {k for k in raw if f"{k}_dollars" in raw or f"{k}_fp" in raw}
        current_only = {k: v for k, v in raw.items() if k not in legacy_keys}
        legacy_only = {k: v for k, v in raw.items() if not k.endswith(("_dollars", "_fp"))}
        assert market_from_dict(current_only) == market
        legacy = market_from_dict(legacy_only)
        assert (legacy.yes_bid, legacy.no_ask, legacy.volume) == (market.yes_bid, market.no_ask, market.volume)


# -------------------------------------------------------------------------------------- legacy cents-era REST
def test_legacy_markets(data_dir: Path) -> None:
    groups = strip_sdk_dump(load_json(data_dir / "legacy_rest_2024/market_data.json"))
    markets = [market_from_dict(m) for group in groups for ms in group.values() for m in ms]
    assert len(markets) == 291
    statuses = Counter(m.status for m in markets)
    assert statuses == {MarketStatus.ACTIVE: 232, MarketStatus.FINALIZED: 58, MarketStatus.INITIALIZED: 1}
    assert Counter(m.result for m in markets) == {"": 233, "no": 49, "yes": 9}
    eu = next(m for m in markets if m.ticker == "EUCLIMATE-2030")
    assert (eu.yes_bid, eu.yes_ask, eu.no_bid, eu.no_ask) == (D("0.35"), D("0.44"), D("0.56"), D("0.65"))
    assert eu.last_price == D("0.35")
    assert eu.previous_yes_ask == D("0.44")
    assert eu.liquidity == D("1226.50")
    assert eu.volume == 39
    assert eu.open_interest == 1
    assert eu.close_time == datetime(2032, 12, 31, 15, tzinfo=UTC)
    # Kalshi sends last_price 0 exactly for the markets nobody traded (volume 0): those have no last price
    assert Counter(m.last_price is None for m in markets) == {False: 263, True: 28}
    for m in markets:
        assert (m.last_price is None) == (m.volume == 0)
        for value in (m.yes_bid, m.yes_ask, m.no_bid, m.no_ask, m.last_price or D(0)):
            assert isinstance(value, Decimal)
            assert 0 <= value <= 1
        assert m.floor_strike is None or isinstance(m.floor_strike, Decimal)


def test_legacy_orderbooks(data_dir: Path) -> None:
    entries = strip_sdk_dump(load_json(data_dir / "legacy_rest_2024/orderbook_data.json"))
    books = {}
    for entry in entries:
        ((ticker, sides),) = entry.items()
        books[ticker] = orderbook_from_dict({"orderbook": sides}, ticker)
    assert len(books) == 100
    assert sum(1 for b in books.values() if not b.yes and not b.no) == 62
    assert sum(1 for b in books.values() if b.yes and b.no) == 37
    one_sided = books["HIGHNY-24JUL14-T95"]
    assert not one_sided.yes
    assert one_sided.no
    assert one_sided.best_yes_bid is None
    apr = books["APRPOTUS-24JUL19-T40.8"]
    assert [(lv.price, lv.size) for lv in apr.yes] == [(D("0.05"), 100), (D("0.06"), 100), (D("0.07"), 100)]
    assert apr.best_yes_bid == D("0.07")
    assert apr.best_no_bid == D("0.88")
    assert apr.best_yes_ask == D("0.12")
    assert apr.best_no_ask == D("0.93")
    for book in books.values():
        for side in (book.yes, book.no):
            assert list(side) == sorted(side)
            assert len(side) <= 5
        if book.yes and book.no:
            assert book.best_yes_bid is not None
            assert book.best_yes_ask is not None
            assert book.best_yes_bid < book.best_yes_ask  # never crossed


def test_legacy_events_and_history(data_dir: Path) -> None:
    events = [event_from_dict(e) for e in strip_sdk_dump(load_json(data_dir / "legacy_rest_2024/event_data.json"))]
    assert len(events) == 100
    assert events[0].event_ticker == "EUCLIMATE"
    assert events[0].category == "Climate and Weather"
    assert events[0].mutually_exclusive is False
    assert events[0].strike_date is None
    history = strip_sdk_dump(load_json(data_dir / "legacy_rest_2024/market_history.json"))
    points = [history_point_from_dict(p) for entry in history for pts in entry.values() for p in pts]
    assert len(points) == 1965
    first = points[0]
    assert first.ts == datetime.fromtimestamp(1720879203, UTC)
    assert (first.yes_bid, first.yes_ask, first.no_bid, first.no_ask) == (D(0), D("0.03"), D("0.97"), D(1))
    assert all(datetime(2024, 7, 12, 14, tzinfo=UTC) <= p.ts <= datetime(2024, 7, 13, 23, tzinfo=UTC) for p in points)


# ------------------------------------------------------------------------------------- nautilus hand-made shapes
def test_nautilus_rest_fixtures(data_dir: Path) -> None:
    base = data_dir / NAUTILUS
    page = parse_markets_page((base / "http_markets.json").read_bytes())
    assert page.cursor is None
    assert len(page.items) == 1
    m = page.items[0]
    assert (m.yes_bid, m.yes_ask, m.no_bid, m.no_ask) == (D("0.42"), D("0.45"), D("0.54"), D("0.57"))
    assert m.volume == D("125000")
    assert m.notional_value == 1
    assert m.status == "active"

    book = parse_orderbook((base / "http_orderbook.json").read_bytes(), "KXBTC-25MAR15-B100000")
    assert book.ticker == "KXBTC-25MAR15-B100000"
    assert book.yes == ((D("0.35"), D(200)), (D("0.42"), D(13)))
    assert book.best_yes_ask == D("0.44")

    trades = parse_trades_page((base / "http_trades.json").read_bytes())
    (t,) = trades.items
    assert (t.yes_price, t.no_price, t.count, t.taker_side) == (D("0.36"), D("0.64"), D(136), Side.NO)
    assert t.created_time == datetime(2025, 3, 1, 18, 44, 1, tzinfo=UTC)

    (candle,) = parse_candlesticks((base / "http_candlesticks.json").read_bytes())
    assert candle.end_period_ts == datetime.fromtimestamp(1741046400, UTC)
    assert (candle.yes_bid.open, candle.yes_bid.close) == (D("0.41"), D("0.42"))
    assert (candle.price.mean, candle.price.previous, candle.price.max) == (D("0.415"), D("0.40"), None)
    assert candle.volume == D(1250)
    assert candle.open_interest == D(50000)


def test_nautilus_ws_fixtures(data_dir: Path) -> None:
    base = data_dir / NAUTILUS
    snap = parse_ws_message((base / "ws_orderbook_snapshot.json").read_text())
    assert isinstance(snap, OrderbookSnapshot)
    assert (snap.sid, snap.seq) == (1, 1)
    assert snap.market_ticker == "KXBTC-25MAR15-B100000"
    assert snap.book.no == ((D("0.54"), D(400)), (D("0.56"), D(17)))
    delta = parse_ws_message((base / "ws_orderbook_delta.json").read_text())
    assert isinstance(delta, OrderbookDelta)
    assert (delta.side, delta.price, delta.delta) == (Side.YES, D("0.42"), D(50))
    assert delta.ts == datetime(2025, 3, 1, 18, 26, 53, 361842, tzinfo=UTC)
    trade = parse_ws_message((base / "ws_trade.json").read_text())
    assert isinstance(trade, TradeUpdate)
    assert trade.trade.count == 136
    assert trade.trade.created_time == datetime.fromtimestamp(1741052641, UTC)
