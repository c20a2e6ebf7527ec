"""Validation at the edge: frames of a known type holding impossible values are rejected by reason, raw kept."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kalshi_analytics.kalshi import FrameDispatcher, OrderbookDelta, SeqGap, TickerUpdate, TradeUpdate
from kalshi_analytics.kalshi.errors import KalshiProtocolError
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.kalshi.validation import Reason, market_of
from tests.kalshi.test_rest import scripted

NOW_MS = int(time.time() * 1000)


def ticker(**fields: Any) -> str:
    msg = {
        "market_ticker": "A",
        "price_dollars": "0.4800",
        "yes_bid_dollars": "0.4500",
        "yes_ask_dollars": "0.5300",
        "volume_fp": "100.00",
        "open_interest_fp": "50.00",
        "ts_ms": NOW_MS,
    }
    msg.update(fields)
    return json.dumps({"type": "ticker", "sid": 1, "seq": 1, "msg": {k: v for k, v in msg.items() if v is not None}})


def trade(**fields: Any) -> str:
    msg = {
        "trade_id": "t1",
        "market_ticker": "A",
        "yes_price_dollars": "0.3600",
        "no_price_dollars": "0.6400",
        "count_fp": "10.00",
        "taker_side": "no",
        "ts_ms": NOW_MS,
    }
    msg.update(fields)
    return json.dumps({"type": "trade", "sid": 2, "seq": 1, "msg": {k: v for k, v in msg.items() if v is not None}})


def snapshot(yes: list[list[str]], no: list[list[str]], ticker: str = "A") -> str:
    msg = {"market_ticker": ticker, "yes_dollars_fp": yes, "no_dollars_fp": no}
    return json.dumps({"type": "orderbook_snapshot", "sid": 3, "seq": 1, "msg": msg})


def delta(price: str = "0.5000", size: str = "5.00", ts_ms: int = NOW_MS) -> str:
    msg = {"market_ticker": "A", "price_dollars": price, "delta_fp": size, "side": "yes", "ts_ms": ts_ms}
    return json.dumps({"type": "orderbook_delta", "sid": 3, "seq": 2, "msg": msg})


DAY_MS = 86_400_000
BAD_FRAMES = [
    (ticker(price_dollars="-0.5"), Reason.PRICE_OUT_OF_RANGE),
    (ticker(price_dollars="1.5"), Reason.PRICE_OUT_OF_RANGE),
    (ticker(yes_bid_dollars="-3", yes_ask_dollars="7"), Reason.PRICE_OUT_OF_RANGE),
    (ticker(yes_bid=-3, yes_bid_dollars=None), Reason.PRICE_OUT_OF_RANGE),  # legacy cents
    (ticker(yes_bid="NaN", yes_bid_dollars=None), Reason.PRICE_OUT_OF_RANGE),  # a string there is read as dollars
    (ticker(yes_bid_dollars="0.6000", yes_ask_dollars="0.4000"), Reason.CROSSED_BOOK),
    (ticker(price_dollars="0.12345678"), Reason.PRICE_PRECISION),
    (ticker(volume_fp="-100"), Reason.COUNT_OUT_OF_RANGE),
    (ticker(volume_fp=1e300), Reason.COUNT_OUT_OF_RANGE),
    (ticker(open_interest_fp="1e300"), Reason.COUNT_OUT_OF_RANGE),
    (ticker(ts_ms=0), Reason.TIME_OUT_OF_RANGE),
    (ticker(ts_ms=None, ts=86400), Reason.TIME_OUT_OF_RANGE),
    (ticker(ts_ms=NOW_MS + 2 * DAY_MS), Reason.TIME_OUT_OF_RANGE),
    (ticker(market_ticker=""), Reason.EMPTY_TICKER),
    (trade(yes_price_dollars=None), Reason.TRADE_INCOMPLETE),
    (trade(count_fp=None), Reason.TRADE_INCOMPLETE),
    (trade(count_fp="-100.00"), Reason.COUNT_OUT_OF_RANGE),
    (trade(yes_price_dollars="1.5", no_price_dollars=None), Reason.PRICE_OUT_OF_RANGE),
    (trade(no_price_dollars="-0.5"), Reason.PRICE_OUT_OF_RANGE),
    (trade(market_ticker=""), Reason.EMPTY_TICKER),
    (trade(ts_ms=0), Reason.TIME_OUT_OF_RANGE),
    (snapshot([["1.5000", "10.00"]], []), Reason.PRICE_OUT_OF_RANGE),
    (snapshot([["0.5000", "-10.00"]], []), Reason.COUNT_OUT_OF_RANGE),
    (snapshot([["0.6000", "10.00"]], [["0.5000", "10.00"]]), Reason.CROSSED_BOOK),
    (snapshot([], [], ticker=""), Reason.EMPTY_TICKER),
    (delta(price="1.01"), Reason.PRICE_OUT_OF_RANGE),
    (delta(price="0.50001"), Reason.PRICE_PRECISION),
    (delta(size="1e300"), Reason.COUNT_OUT_OF_RANGE),
    (delta(ts_ms=1000), Reason.TIME_OUT_OF_RANGE),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_FRAMES)
async def test_impossible_values_are_rejected_by_reason_with_raw_kept(raw: str, reason: Reason) -> None:
    d = FrameDispatcher()
    assert [e for e in d.handle(raw) if not isinstance(e, SeqGap)] == []
    assert d.counters.rejected == {reason: 1}
    assert d.counters.bad_frames == 1
    assert d.counters.messages == 0
    (kept,) = d.bad_frames
    assert (kept.kind, kept.raw) == (reason, raw)
    assert kept.reason  # a detail a person can read


@pytest.mark.parametrize(
    "raw",
    [
        ticker(),
        ticker(price_dollars="0", yes_bid_dollars="0", yes_ask_dollars="1"),  # bounds included
        ticker(yes_bid_dollars="0.5000", yes_ask_dollars="0.5000"),
        ticker(price_dollars="0.12340000"),  # trailing zeros are not precision
        ticker(ts_ms=NOW_MS + 3_600_000),  # an exchange clock an hour ahead is tolerated
        trade(),
        trade(no_price_dollars=None),  # derived as 1 − yes
        snapshot([["0.4500", "10.00"]], [["0.5500", "10.00"]]),  # bid 0.45 vs ask 0.45: touching, not crossed
        delta(size="-5.00"),  # a delta is signed
    ],
)
async def test_sane_frames_pass(raw: str) -> None:
    d = FrameDispatcher()
    events = d.handle(raw)
    assert len(events) == 1
    assert d.counters.bad_frames == 0


async def test_a_rejected_frame_keeps_its_seq_so_the_next_is_no_gap() -> None:
    d = FrameDispatcher()
    frames = [ticker(), ticker(price_dollars="1.5"), ticker()]
    seqs = [json.loads(f) | {"seq": n} for n, f in enumerate(frames, 1)]
    out = [d.handle(json.dumps(f)) for f in seqs]
    assert [[type(e) for e in o] for o in out] == [[TickerUpdate], [], [TickerUpdate]]
    assert d.counters.gaps == 0


async def test_the_consumer_admits_what_it_tracks() -> None:
    d = FrameDispatcher()
    d.admit = lambda msg: None if market_of(msg) in ("A", None) else (Reason.UNKNOWN_TICKER, "not ours")
    assert isinstance(d.handle(trade())[0], TradeUpdate)
    assert [e for e in d.handle(trade(market_ticker="B")) if not isinstance(e, SeqGap)] == []
    assert isinstance(d.handle(delta())[0], OrderbookDelta)
    assert d.counters.rejected == {Reason.UNKNOWN_TICKER: 1}


def test_the_time_window_is_relative_to_receipt() -> None:
    d = FrameDispatcher()
    old = datetime.now(UTC) - timedelta(days=3)
    # a frame read from a file days later: judged against when it was received, not today
    assert len(d.handle(ticker(ts_ms=int(old.timestamp() * 1000)), old)) == 1


async def test_rest_listings_drop_impossible_markets_and_trades_keeping_them() -> None:
    market = {"ticker": "A", "event_ticker": "E", "status": "active", "yes_bid_dollars": "0.4000"}
    markets = [
        market,
        market | {"ticker": "B", "yes_bid_dollars": "1.5"},
        market | {"ticker": "C", "volume_fp": "-100"},
        market | {"ticker": ""},
        market | {"ticker": "D", "yes_bid_dollars": "0.7", "yes_ask_dollars": "0.3"},
        market | {"ticker": "F", "updated_time": "1970-01-01T00:00:00Z"},
    ]
    trade = {"trade_id": "t1", "ticker": "A", "yes_price_dollars": "0.3600", "count_fp": "1.00"}
    trades = [trade, trade | {"trade_id": "t2", "count_fp": None}, trade | {"trade_id": "t3", "yes_price_dollars": "9"}]
    async with KalshiRestClient("http://127.0.0.1:9/trade-api/v2") as c:
        scripted(
            c,
            [
                json.dumps({"markets": markets, "cursor": "next"}).encode(),
                json.dumps({"trades": trades, "cursor": ""}).encode(),
            ],
        )
        page = await c.get_markets()
        got = [t async for t in c.iter_trades(ticker="A")]
    assert [m.ticker for m in page.items] == ["A"]
    assert page.cursor == "next", "the listing goes on past a bad market"
    assert [t.trade_id for t in got] == ["t1"]
    assert [e.kind for e in c.rejected] == [
        "price_out_of_range",
        "count_out_of_range",
        "empty_ticker",
        "crossed_book",
        "time_out_of_range",
        "trade_incomplete",
        "price_out_of_range",
    ]
    assert json.loads(c.rejected[0].raw)["yes_bid_dollars"] == "1.5"  # the market's own JSON
    assert json.loads(c.rejected[-1].raw)["trade_id"] == "t3"


async def test_one_impossible_market_raises_with_its_reason_and_is_kept() -> None:
    bad = {"ticker": "B", "event_ticker": "E", "status": "active", "last_price_dollars": "-0.5"}
    async with KalshiRestClient("http://127.0.0.1:9/trade-api/v2") as c:
        scripted(c, [json.dumps({"market": bad}).encode()])
        with pytest.raises(KalshiProtocolError) as info:
            await c.get_market("B")
    assert info.value.kind == Reason.PRICE_OUT_OF_RANGE
    assert [e.kind for e in c.rejected] == [Reason.PRICE_OUT_OF_RANGE]
    assert json.loads(c.rejected[0].raw) == bad
