"""Wire → domain: legacy and current forms agree, unknowns are tolerated, bad input raises typed errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kalshi_analytics.kalshi import (
    CommandError,
    CommandOk,
    EventFeeUpdate,
    EventLifecycle,
    KalshiApiError,
    KalshiProtocolError,
    LifecycleEvent,
    MarketLifecycle,
    MarketResult,
    MarketStatus,
    MarketStatusFilter,
    OrderbookDelta,
    OrderbookSnapshot,
    Side,
    Subscribed,
    SubscriptionInfo,
    TickerUpdate,
    TradeUpdate,
    Unsubscribed,
    api_error_from_body,
    filters_matching,
    parse_ws_message,
    status_matches,
)
from kalshi_analytics.kalshi.wire import (
    candlestick_from_dict,
    market_from_dict,
    parse_batch_candlesticks,
    parse_event,
    parse_exchange_status,
    parse_markets_page,
    parse_orderbook,
    parse_orderbooks,
    parse_series_list,
    series_from_dict,
    trade_from_dict,
)

D = Decimal
T0 = datetime(2022, 11, 22, 20, 44, 1, tzinfo=UTC)


def frame(type_: str, msg: Any, **env: Any) -> str:
    return json.dumps({"type": type_, **env, "msg": msg})


# ------------------------------------------------------------------------------------------------ number rules
def test_dollar_strings_and_cents_are_the_same_exact_decimal() -> None:
    a = parse_ws_message(
        frame(
            "orderbook_delta",
            {"market_ticker": "X", "price_dollars": "0.480", "delta_fp": "5.00", "side": "yes"},
            sid=1,
            seq=1,
        )
    )
    b = parse_ws_message(
        frame("orderbook_delta", {"market_ticker": "X", "price": 48, "delta": 5, "side": "yes"}, sid=1, seq=1)
    )
    assert isinstance(a, OrderbookDelta)
    assert isinstance(b, OrderbookDelta)
    assert a.price == b.price == D("0.48")
    assert a == b


def test_sub_cent_precision_is_kept_and_json_numbers_are_exact() -> None:
    msg = parse_ws_message(
        frame("orderbook_delta", {"market_ticker": "X", "price_dollars": 0.0001, "delta_fp": -0.07, "side": "no"})
    )
    assert isinstance(msg, OrderbookDelta)
    assert msg.price == D("0.0001")
    assert msg.delta == D("-0.07")
    assert isinstance(msg.price, Decimal)
    assert str(msg.price) == "0.0001"
    fine = market_from_dict({"ticker": "T", "yes_bid_dollars": "0.123456", "floor_strike": 67749.99})
    assert fine.yes_bid == D("0.123456")
    assert fine.floor_strike == D("67749.99")


# ----------------------------------------------------------------------------------------- legacy vs current WS
def test_orderbook_snapshot_current_vs_legacy() -> None:
    current = frame(
        "orderbook_snapshot",
        {
            "market_ticker": "FED-23DEC-T3.00",
            "market_id": "m",
            "yes_dollars_fp": [["0.2200", "333.00"], ["0.0800", "300.00"]],
            "no_dollars_fp": [["0.5400", "20.00"]],
        },
        sid=2,
        seq=2,
    )
    legacy = frame(
        "orderbook_snapshot",
        {"market_ticker": "FED-23DEC-T3.00", "market_id": "m", "yes": [[8, 300], [22, 333]], "no": [[54, 20]]},
        sid=2,
        seq=2,
    )
    transitional = frame(
        "orderbook_snapshot",
        {
            "market_ticker": "FED-23DEC-T3.00",
            "market_id": "m",
            "yes": [[8, 300], [22, 333]],
            "yes_dollars": [["0.080", 300], ["0.220", 333]],
            "no": [[54, 20]],
            "no_dollars": [["0.540", 20]],
        },
        sid=2,
        seq=2,
    )
    a, b, c = (parse_ws_message(f) for f in (current, legacy, transitional))
    assert isinstance(a, OrderbookSnapshot)
    assert a == b == c
    assert a.book.yes == ((D("0.08"), D(300)), (D("0.22"), D(333)))  # sorted ascending: best bid last
    assert a.book.best_yes_bid == D("0.22")
    assert a.book.best_yes_ask == D("0.46")


def test_orderbook_snapshot_absent_side_is_empty() -> None:
    msg = parse_ws_message(
        frame("orderbook_snapshot", {"market_ticker": "X", "market_id": "m", "no_dollars_fp": [["0.30", "1.00"]]})
    )
    assert isinstance(msg, OrderbookSnapshot)
    assert msg.book.yes == ()
    assert msg.book.best_no_bid == D("0.3")
    empty = parse_ws_message(frame("orderbook_snapshot", {"market_ticker": "X", "market_id": "m"}))
    assert isinstance(empty, OrderbookSnapshot)
    assert empty.book.yes == () == empty.book.no


def test_orderbook_delta_timestamps_ms_seconds_and_rfc3339() -> None:
    base = {"market_ticker": "X", "price_dollars": "0.960", "delta_fp": "-54.00", "side": "yes"}
    forms = [
        {"ts_ms": 1669149841000},
        {"ts": "2022-11-22T20:44:01Z"},
        {"ts": 1669149841},
        {"ts": "2022-11-22T20:44:01Z", "ts_ms": 1669149841000},
    ]
    msgs = [parse_ws_message(frame("orderbook_delta", {**base, **f}, sid=2, seq=3)) for f in forms]
    assert all(isinstance(m, OrderbookDelta) and m.ts == T0 and m.ts.tzinfo is UTC for m in msgs)
    assert len(set(msgs)) == 1


def test_ticker_current_vs_legacy() -> None:
    current = {
        "market_ticker": "FED",
        "market_id": "m",
        "price_dollars": "0.4800",
        "yes_bid_dollars": "0.4500",
        "yes_ask_dollars": "0.5300",
        "volume_fp": "33896.00",
        "open_interest_fp": "20422.00",
        "dollar_volume": 16948,
        "dollar_open_interest": 10211,
        "ts": 1669149841,
        "ts_ms": 1669149841000,
        "time": "2022-11-22T20:44:01Z",
    }
    legacy = {
        "market_ticker": "FED",
        "market_id": "m",
        "price": 48,
        "yes_bid": 45,
        "yes_ask": 53,
        "volume": 33896,
        "open_interest": 20422,
        "dollar_volume": 16948,
        "dollar_open_interest": 10211,
        "ts": 1669149841,
    }
    a = parse_ws_message(frame("ticker", current, sid=11, sending_ts_ms=1669149841005))
    b = parse_ws_message(frame("ticker", legacy, sid=11))
    assert isinstance(a, TickerUpdate)
    assert isinstance(b, TickerUpdate)
    assert (a.price, a.yes_bid, a.yes_ask, a.volume, a.ts) == (D("0.48"), D("0.45"), D("0.53"), D(33896), T0)
    assert a.sent_at == datetime(2022, 11, 22, 20, 44, 1, 5000, tzinfo=UTC)
    assert a == TickerUpdate(**{**{f: getattr(b, f) for f in b.__dataclass_fields__}, "sent_at": a.sent_at})


def test_trade_current_vs_legacy() -> None:
    current = {
        "trade_id": "t1",
        "market_ticker": "H",
        "yes_price_dollars": "0.360",
        "no_price_dollars": "0.640",
        "count_fp": "136.00",
        "taker_side": "no",
        "ts": 1669149841,
        "ts_ms": 1669149841000,
    }
    legacy = {
        "trade_id": "t1",
        "market_ticker": "H",
        "yes_price": 36,
        "no_price": 64,
        "count": 136,
        "taker_side": "no",
        "ts": 1669149841,
    }
    a, b = (parse_ws_message(frame("trade", m, sid=11, seq=5)) for m in (current, legacy))
    assert isinstance(a, TradeUpdate)
    assert a == b
    assert a.trade.yes_price == D("0.36")
    assert a.trade.no_price == D("0.64")
    assert a.trade.taker_side is Side.NO
    rest = trade_from_dict(
        {
            "trade_id": "t1",
            "ticker": "H",
            "yes_price_dollars": "0.3600",
            "count_fp": "136.00",
            "taker_side": "no",
            "created_time": "2022-11-22T20:44:01Z",
        }
    )
    assert rest == a.trade  # REST and WS trades share the domain form (no price derived as 1 − yes)


def test_unknown_fields_ignored_and_unknown_enums_kept() -> None:
    m = market_from_dict({"ticker": "T", "status": "paused_foo", "result": "maybe", "brand_new_field": {"x": 1}})
    assert m.status == "paused_foo"
    assert not isinstance(m.status, MarketStatus)
    assert m.result == "maybe"
    assert market_from_dict({"ticker": "T", "status": "active"}).status is MarketStatus.ACTIVE
    msg = parse_ws_message(
        frame(
            "orderbook_delta",
            {"market_ticker": "X", "price_dollars": "0.5", "delta_fp": "1", "side": "maybe", "surprise": [1]},
            Clock=5,
        )
    )
    assert isinstance(msg, OrderbookDelta)
    assert msg.side == "maybe"
    life = parse_ws_message(frame("market_lifecycle_v2", {"market_ticker": "X", "event_type": "teleported"}))
    assert isinstance(life, MarketLifecycle)
    assert life.event_type == "teleported"


def test_lifecycle_messages() -> None:
    settled = parse_ws_message(
        frame(
            "market_lifecycle_v2",
            {
                "market_ticker": "X",
                "event_type": "settled",
                "result": "yes",
                "settlement_value": "1.0000",
                "settled_ts": 1669149841,
                "determination_ts": 1669149800,
            },
            sid=4,
            seq=9,
        )
    )
    assert isinstance(settled, MarketLifecycle)
    assert settled.event_type is LifecycleEvent.SETTLED
    assert settled.result is MarketResult.YES
    assert settled.settlement_value == 1
    assert settled.settled_ts == T0
    created = parse_ws_message(
        frame(
            "market_lifecycle_v2",
            {
                "market_ticker": "X",
                "event_type": "created",
                "open_ts": 1669149841,
                "close_ts": 1669149900,
                "price_ranges": [{"start": "0", "end": "1", "step": "0.01"}],
                "additional_metadata": {"title": "t"},
            },
        )
    )
    assert isinstance(created, MarketLifecycle)
    assert created.open_ts == T0
    assert created.price_ranges[0].step == D("0.01")
    ev = parse_ws_message(
        frame(
            "event_lifecycle",
            {
                "event_ticker": "E",
                "series_ticker": "S",
                "title": "t",
                "collateral_return_type": "MECNET",
                "strike_date": 1669149841,
            },
        )
    )
    assert isinstance(ev, EventLifecycle)
    assert ev.strike_date == T0
    assert ev.series_ticker == "S"
    fee = parse_ws_message(
        frame("event_fee_update", {"event_ticker": "E", "fee_type_override": None, "fee_multiplier_override": 0.5})
    )
    assert isinstance(fee, EventFeeUpdate)
    assert fee.fee_multiplier_override == D("0.5")
    assert fee.fee_type_override is None


def test_command_responses() -> None:
    assert parse_ws_message('{"id":1,"type":"subscribed","msg":{"channel":"orderbook_delta","sid":1}}') == Subscribed(
        id=1, sid=1, channel="orderbook_delta"
    )
    ok = parse_ws_message('{"id":123,"sid":456,"seq":222,"type":"ok","msg":{"market_tickers":["A","B"]}}')
    assert ok == CommandOk(id=123, sid=456, seq=222, market_tickers=("A", "B"))
    listing = parse_ws_message(
        '{"id":3,"type":"ok","msg":[{"channel":"orderbook_delta","sid":1},{"channel":"ticker","sid":2}]}'
    )
    assert isinstance(listing, CommandOk)
    assert listing.subscriptions == (
        SubscriptionInfo(channel="orderbook_delta", sid=1),
        SubscriptionInfo(channel="ticker", sid=2),
    )
    assert parse_ws_message('{"id":102,"sid":2,"seq":7,"type":"unsubscribed"}') == Unsubscribed(id=102, sid=2, seq=7)
    err = parse_ws_message('{"id":123,"type":"error","msg":{"code":6,"msg":"Already subscribed","market_ticker":"A"}}')
    assert err == CommandError(id=123, code=6, message="Already subscribed", market_ticker="A")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ('{"type":"ticker","sid":1,"msg":{"market_ticker":"X"', KalshiProtocolError.MALFORMED_JSON),
        ("not json at all", KalshiProtocolError.MALFORMED_JSON),
        (b"\xff\xfe", KalshiProtocolError.MALFORMED_JSON),
        ('{"type":"fill_v9","sid":1,"msg":{}}', KalshiProtocolError.UNKNOWN_TYPE),
        ('{"sid":1,"msg":{}}', KalshiProtocolError.UNKNOWN_TYPE),
        ('{"type":"orderbook_delta","sid":1,"msg":{"market_ticker":"X"}}', KalshiProtocolError.INVALID),
        (
            '{"type":"orderbook_delta","msg":{"market_ticker":"X","price_dollars":"abc","delta_fp":"1","side":"yes"}}',
            KalshiProtocolError.INVALID,
        ),
        ("[1, 2]", KalshiProtocolError.INVALID),
    ],
)
def test_bad_frames_raise_typed_errors_with_raw_kept(raw: str | bytes, kind: str) -> None:
    with pytest.raises(KalshiProtocolError) as info:
        parse_ws_message(raw)
    assert info.value.kind == kind
    assert info.value.raw == (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)


# ---------------------------------------------------------------------------------------------------------- REST
@pytest.mark.parametrize("side", [None, [], "missing"])
def test_rest_orderbook_fp_empty_side_forms(side: Any) -> None:
    body: dict[str, Any] = {"yes_dollars": [["0.1200", "0.47"], ["0.1100", "97.22"]]}
    if side != "missing":
        body["no_dollars"] = side
    book = parse_orderbook(json.dumps({"orderbook_fp": body}), "T")
    assert book.no == ()
    assert book.best_yes_ask is None
    assert book.yes == ((D("0.11"), D("97.22")), (D("0.12"), D("0.47")))


def test_rest_orderbook_legacy_null_sides_and_both_shapes() -> None:
    assert parse_orderbook('{"orderbook":{"yes":null,"no":null}}', "MVE").yes == ()
    legacy = parse_orderbook(
        '{"orderbook":{"yes":[[42,13]],"no":[[56,17]],"yes_dollars":[["0.4200",13]],"no_dollars":[["0.5600",17]]}}', "T"
    )
    both = parse_orderbook(
        '{"orderbook":{"yes":[[42,13]],"no":[[56,17]]},"orderbook_fp":{"yes_dollars":[["0.4200","13.00"]],"no_dollars":[["0.5600","17.00"]]}}',
        "T",
    )
    assert legacy == both
    multi = parse_orderbooks(
        '{"orderbooks":[{"ticker":"A","orderbook_fp":{"yes_dollars":[],"no_dollars":[["0.7","1"]]}}]}'
    )
    assert multi[0].ticker == "A"
    assert multi[0].best_no_bid == D("0.7")


def test_candlesticks_current_legacy_and_no_trade() -> None:
    current = {
        "end_period_ts": 1669149841,
        "yes_bid": {"open_dollars": "0.41", "high_dollars": "0.45", "low_dollars": "0.39", "close_dollars": "0.42"},
        "yes_ask": {"open_dollars": "0.44", "high_dollars": "0.48", "low_dollars": "0.42", "close_dollars": "0.45"},
        "price": {
            "open_dollars": "0.41",
            "high_dollars": "0.45",
            "low_dollars": "0.39",
            "close_dollars": "0.42",
            "mean_dollars": "0.4150",
            "previous_dollars": "0.40",
        },
        "volume_fp": "1250.00",
        "open_interest_fp": "50000.00",
    }
    legacy = {
        "end_period_ts": 1669149841,
        "yes_bid": {"open": 41, "high": 45, "low": 39, "close": 42},
        "yes_ask": {"open": 44, "high": 48, "low": 42, "close": 45},
        "price": {"open": 41, "high": 45, "low": 39, "close": 42, "mean": 41.5, "previous": 40},
        "volume": 1250,
        "open_interest": 50000,
    }
    a, b = candlestick_from_dict(current), candlestick_from_dict(legacy)
    assert a == b
    assert a.end_period_ts == T0
    assert a.price.mean == D("0.415")
    empty = candlestick_from_dict(
        {
            **current,
            "price": {
                "open_dollars": None,
                "high_dollars": None,
                "low_dollars": None,
                "close_dollars": None,
                "previous_dollars": "0.40",
            },
        }
    )
    assert empty.price.open is None
    assert empty.price.close is None
    assert empty.price.previous == D("0.4")
    assert candlestick_from_dict({**current, "price": None}).price.close is None
    batch = parse_batch_candlesticks(json.dumps({"markets": [{"market_ticker": "A", "candlesticks": [current]}]}))
    assert batch == {"A": [a]}


def test_markets_page_cursor_forms() -> None:
    assert parse_markets_page('{"markets":[],"cursor":""}').cursor is None
    assert parse_markets_page('{"markets":[],"cursor":null}').cursor is None
    assert parse_markets_page('{"markets":[]}').cursor is None
    assert parse_markets_page('{"markets":[{"ticker":"A"}],"cursor":"CgwI"}').cursor == "CgwI"


def test_event_series_and_exchange_status() -> None:
    event = parse_event(
        '{"event":{"event_ticker":"E","series_ticker":"S","mutually_exclusive":true,"strike_date":"2026-03-19T14:00:00Z"},"markets":[{"ticker":"E-1","status":"finalized"}]}'
    )
    assert event.markets[0].status is MarketStatus.FINALIZED
    assert event.strike_date == datetime(2026, 3, 19, 14, tzinfo=UTC)
    series = series_from_dict(
        {
            "ticker": "S",
            "fee_type": "quadratic",
            "fee_multiplier": 1,
            "tags": ["a"],
            "settlement_sources": [{"name": "n", "url": "u"}],
            "volume_fp": "10.50",
        }
    )
    assert series.fee_multiplier == 1
    assert series.tags == ("a",)
    assert series.volume == D("10.5")
    assert parse_series_list('{"series":[{"ticker":"S"}]}').items[0].ticker == "S"
    status = parse_exchange_status(
        '{"exchange_active":true,"trading_active":false,"exchange_estimated_resume_time":null}'
    )
    assert status.exchange_active
    assert not status.trading_active
    assert status.exchange_estimated_resume_time is None


@pytest.mark.parametrize(
    "body",
    [
        '{"markets":[{"ticker":"A"},{"tick',
        "",
        "<html>502 Bad Gateway</html>",
        '{"markets":[{"no_ticker":1}]}',
        '{"unexpected":1}',
        '{"markets":"x"}',
    ],
)
def test_truncated_or_invalid_rest_bodies_raise_protocol_errors(body: str) -> None:
    with pytest.raises(KalshiProtocolError) as info:
        parse_markets_page(body.encode())
    assert info.value.raw in (body, '{"no_ticker": 1}')  # the whole body, or the offending item
    assert not isinstance(info.value.__cause__, json.JSONDecodeError)


# ------------------------------------------------------------------------------------------------------- errors
def test_api_error_shapes() -> None:
    flat = api_error_from_body(
        400,
        b'{"code":"invalid_parameters","message":"bad status","details":"status=foo"}',
        method="GET",
        path="/trade-api/v2/markets",
    )
    assert (flat.status, flat.code, flat.message, flat.details) == (
        400,
        "invalid_parameters",
        "bad status",
        "status=foo",
    )
    assert "GET /trade-api/v2/markets" in str(flat)
    assert not flat.retryable
    nested = api_error_from_body(409, '{"error":{"code":"order_already_exists","message":"dup"}}')
    assert (nested.code, nested.message, nested.details) == ("order_already_exists", "dup", None)
    limited = api_error_from_body(429, '{"error": "too many requests"}')
    assert (limited.code, limited.message) == (None, "too many requests")
    assert limited.retryable
    html = api_error_from_body(502, b"<html>bad gateway</html>")
    assert html.message == "<html>bad gateway</html>"
    assert html.retryable
    assert html.body == "<html>bad gateway</html>"
    empty = api_error_from_body(404, b"")
    assert isinstance(empty, KalshiApiError)
    assert empty.message is None
    assert empty.status == 404


def test_status_vocabulary() -> None:
    assert status_matches("open", "active")
    assert status_matches(MarketStatusFilter.OPEN, "inactive")
    assert status_matches("settled", "finalized")
    assert not status_matches("settled", "closed")
    assert status_matches("closed", "determined")
    assert status_matches("unopened", "initialized")
    assert filters_matching("inactive") == {MarketStatusFilter.OPEN, MarketStatusFilter.PAUSED}
    assert filters_matching("paused_foo") == frozenset()


def test_legacy_price_field_holding_a_dollar_string_is_dollars_in_ws_json() -> None:
    as_string = parse_ws_message(
        frame("orderbook_delta", {"market_ticker": "X", "price": "0.42", "delta": 3, "side": "yes"})
    )
    as_cents = parse_ws_message(
        frame("orderbook_delta", {"market_ticker": "X", "price": 42, "delta": 3, "side": "yes"})
    )
    assert isinstance(as_string, OrderbookDelta)
    assert isinstance(as_cents, OrderbookDelta)
    assert as_string.price == as_cents.price == D("0.42")
