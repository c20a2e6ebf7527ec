"""Fields of Kalshi's current schema (spec ≥ 3.31) and what a never-traded market's price means."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kalshi_analytics.kalshi import TickerUpdate, parse_ws_message
from kalshi_analytics.kalshi.wire import (
    market_from_dict,
    parse_event_fee_changes,
    parse_exchange_status,
    parse_multivariate_events,
    parse_series_fee_changes,
    series_from_dict,
)

D = Decimal


# A market nobody traded yet: the spec makes last_price_dollars a required, non-null string, so Kalshi sends
# "0.0000" (cents era: 0); a client must not read that as a trade at $0 (prices trade strictly inside (0, 1)).
@pytest.mark.parametrize(
    "fields",
    [
        {"last_price_dollars": "0.0000", "previous_price_dollars": "0.0000"},
        {"last_price_dollars": "0.0000", "last_price": 0, "previous_price": 0},
        {"last_price_dollars": None, "previous_price_dollars": None},
        {"last_price": 0, "previous_price": 0},
        {},
    ],
    ids=["current", "both", "null", "legacy", "absent"],
)
def test_never_traded_market_has_no_last_price(fields: dict[str, Any]) -> None:
    m = market_from_dict({"ticker": "A", "volume_fp": "0.00", "yes_bid_dollars": "0.4200", **fields})
    assert m.last_price is None
    assert m.previous_price is None
    assert m.yes_bid == D("0.42")  # a zero elsewhere is still read (an empty bid side is $0)


def test_traded_market_keeps_its_last_price() -> None:
    m = market_from_dict({"ticker": "A", "last_price_dollars": "0.0100", "previous_price": 2})
    assert m.last_price == D("0.01")
    assert m.previous_price == D("0.02")


def test_never_traded_ticker_has_no_price() -> None:
    msg = {"market_ticker": "A", "price_dollars": "0.0000", "yes_bid_dollars": "0.4000", "ts_ms": 1}
    ev = parse_ws_message(json.dumps({"type": "ticker", "sid": 1, "msg": msg}))
    assert isinstance(ev, TickerUpdate)
    assert ev.price is None
    assert ev.yes_bid == D("0.40")
    legacy = parse_ws_message(json.dumps({"type": "ticker", "sid": 1, "msg": {"market_ticker": "A", "price": 0}}))
    assert isinstance(legacy, TickerUpdate)
    assert legacy.price is None


def test_settlement_bounds_fields_and_their_absence() -> None:
    m = market_from_dict({"ticker": "A", "settlement_bounds_type": "default"})
    assert m.settlement_bounds_type == "default"
    assert m.settlement_floor is None
    floor = market_from_dict({"ticker": "B", "settlement_bounds_type": "floor", "settlement_floor_dollars": "0.3000"})
    assert floor.settlement_bounds_type == "floor"
    assert floor.settlement_floor == D("0.3")
    old = market_from_dict({"ticker": "C"})  # payloads before spec 3.31 lack both
    assert old.settlement_bounds_type is None
    assert old.settlement_floor is None


def test_series_categories_and_their_absence() -> None:
    s = series_from_dict({"ticker": "S", "category": "Sports", "categories": ["Sports", "Basketball"]})
    assert s.categories == ("Sports", "Basketball")
    old = series_from_dict({"ticker": "S", "category": "Sports"})  # older payloads: one category only
    assert old.categories == ("Sports",)
    assert series_from_dict({"ticker": "S", "categories": None}).categories == ()


def test_exchange_status_with_shards() -> None:
    status = parse_exchange_status(
        '{"exchange_active":true,"trading_active":true,"intra_exchange_transfers_active":true,'
        '"exchange_index_statuses":[{"exchange_index":0,"description":"Default","exchange_active":true,'
        '"trading_active":false,"intra_exchange_transfers_active":true}]}'
    )
    [shard] = status.exchange_index_statuses
    assert shard.exchange_index == 0
    assert shard.description == "Default"
    assert shard.trading_active is False
    assert parse_exchange_status('{"exchange_active":true,"trading_active":true}').exchange_index_statuses == ()


def test_fee_changes_and_multivariate_events() -> None:
    series = parse_series_fee_changes(
        '{"series_fee_change_arr":[{"id":"1","series_ticker":"S","fee_type":"quadratic_with_maker_fees",'
        '"fee_multiplier":0.5,"scheduled_ts":"2026-10-01T00:00:00Z"}]}'
    )
    [change] = series
    assert change.series_ticker == "S"
    assert change.fee_multiplier == D("0.5")
    assert change.scheduled_ts == datetime(2026, 10, 1, tzinfo=UTC)
    page = parse_event_fee_changes(
        '{"event_fee_changes":[{"id":"2","event_ticker":"E","series_ticker":"S","fee_type_override":null,'
        '"fee_multiplier_override":null,"scheduled_ts":"2026-10-01T00:00:00Z"}],"cursor":"abc"}'
    )
    assert page.cursor == "abc"
    assert page.items[0].fee_type_override is None
    assert page.items[0].event_ticker == "E"
    events = parse_multivariate_events('{"events":[{"event_ticker":"KXMVE-1","series_ticker":"KXMVE"}],"cursor":""}')
    assert events.items[0].event_ticker == "KXMVE-1"
    assert events.cursor is None
