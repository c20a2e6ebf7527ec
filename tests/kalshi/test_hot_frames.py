"""The fast path of the WS parser builds exactly what the schema path builds, and leaves everything else to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kalshi_analytics.kalshi.hot_frames import parse_hot_frame
from kalshi_analytics.kalshi.wire import _WS_ADAPTER, parse_ws_message

RECEIVED = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)

DELTA = {
    "type": "orderbook_delta",
    "sid": 2,
    "seq": 17,
    "msg": {
        "market_ticker": "KXBTCD-26FEB1217-T67000.99",
        "market_id": "9b0f6b8e-2a31-4c2e-9a55-0d2b4f1d7c11",
        "price_dollars": "0.4200",
        "delta_fp": "-12.50",
        "side": "no",
        "ts": "2026-02-12T12:06:16Z",
        "ts_ms": 1770897976123,
    },
}
TICKER = {
    "type": "ticker",
    "sid": 1,
    "msg": {
        "market_ticker": "KXBTCD-26FEB1217-T67000.99",
        "market_id": "9b0f6b8e-2a31-4c2e-9a55-0d2b4f1d7c11",
        "price_dollars": "0.4300",
        "yes_bid_dollars": "0.4200",
        "yes_ask_dollars": "0.4400",
        "volume_fp": "1234.00",
        "open_interest_fp": "99.50",
        "dollar_volume": 530,
        "dollar_open_interest": 42,
        "yes_bid_size_fp": "10.00",
        "yes_ask_size_fp": "3.00",
        "last_trade_size_fp": "1.00",
        "ts": 1770897976,
        "ts_ms": 1770897976123,
        "time": "2026-02-12T12:06:16Z",
    },
}
TRADE = {
    "type": "trade",
    "sid": 3,
    "seq": 5,
    "msg": {
        "trade_id": "5e1f8f5e-7a1b-4a43-9f0e-2f1e0c6a9d01",
        "market_ticker": "KXBTCD-26FEB1217-T67000.99",
        "yes_price_dollars": "0.4300",
        "no_price_dollars": "0.5700",
        "count_fp": "2.00",
        "taker_side": "yes",
        "taker_outcome_side": "yes",
        "taker_book_side": "bid",
        "is_block_trade": False,
        "ts": 1770897976,
        "ts_ms": 1770897976123,
    },
}
BASES = {"delta": DELTA, "ticker": TICKER, "trade": TRADE}

ODD_VALUES: list[Any] = [None, 0, 7, 1.5, True, "", "x", "NaN", "Infinity", "0.5", " 0.5 ", "1_000", "1e3", [], {}]
ODD_VALUES += [10**20, -1, "2026-02-12T12:06:16Z", "yes", "bid", "１２"]


def _schema(raw: str) -> str | None:
    """The schema path's result (repr: Decimal exponents included), or None when it refuses the frame."""
    try:
        return repr(_WS_ADAPTER.validate_json(raw).to_domain(RECEIVED))
    except Exception:
        return None


def _variants(base: dict[str, Any]) -> list[str]:
    out = [json.dumps(base)]
    for where in ("frame", "msg"):
        target = base if where == "frame" else base["msg"]
        for key in [*target, "price", "delta", "yes_bid", "count", "created_time", "sending_ts_ms", "ticker", "id"]:
            for value in [*ODD_VALUES, "<missing>"]:
                frame = json.loads(json.dumps(base))
                t = frame if where == "frame" else frame["msg"]
                if value == "<missing>":
                    t.pop(key, None)
                else:
                    t[key] = value
                out.append(json.dumps(frame))
    return out


@pytest.mark.parametrize("kind", sorted(BASES))
def test_current_frames_take_the_fast_path_and_equal_the_schema_path(kind: str) -> None:
    raw = json.dumps(BASES[kind])
    fast = parse_hot_frame(raw, RECEIVED)
    assert fast is not None
    assert repr(fast) == _schema(raw)
    assert fast.received_at == RECEIVED
    assert parse_ws_message(raw.encode(), RECEIVED) == fast


@pytest.mark.parametrize("kind", sorted(BASES))
def test_any_field_changed_either_equals_the_schema_path_or_is_left_to_it(kind: str) -> None:
    taken = 0
    for raw in _variants(BASES[kind]):
        fast = parse_hot_frame(raw, RECEIVED)
        if fast is None:
            continue
        taken += 1
        assert repr(fast) == _schema(raw), raw
    assert taken > 20  # the harmless changes (a missing optional field, another price) stay on the fast path


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"type": "ticker"}',
        '{"type": "subscribed", "id": 1, "msg": {"channel": "ticker", "sid": 1}}',
        '{"type": "orderbook_snapshot", "sid": 2, "seq": 1, "msg": {"market_ticker": "A", "yes_dollars_fp": []}}',
        json.dumps({**TICKER, "msg": {**TICKER["msg"], "price": 43}}),  # legacy cents: the schema path's rules
    ],
)
def test_other_frames_are_left_to_the_schema_path(raw: str) -> None:
    assert parse_hot_frame(raw, RECEIVED) is None
