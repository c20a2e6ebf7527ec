"""The trading core fed by hand, as the live runner will feed it: quotes, intents, settlements, marks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal as D

import numpy as np
import pytest

from kalshi_analytics.strategies.base import Position
from kalshi_analytics.trading import (
    CoreConfig,
    DisplayedLiquidity,
    MarketSpec,
    MarkTape,
    SeriesFees,
    TradingCore,
    equity_curve,
    signal_record,
)

NAN = math.nan
YES, NO = 1, 2
S = 1_000_000  # µs


class Rows:
    """Quotes as the live runner might hold them: one row per snapshot (ts, market, yes bid/ask and sizes)."""

    def __init__(self, rows: list[tuple[int, float, float, float, float]]) -> None:
        self.rows = rows  # (ts_us, yes_bid, yes_ask, yes_bid_size, yes_ask_size)

    def ts_us(self, row: int) -> int:
        return self.rows[row][0]

    def source(self, row: int) -> str:
        return "websocket"

    def touch(self, row: int, side: int, buy: bool) -> tuple[float, float]:
        _, yb, ya, ybs, yas = self.rows[row]
        if buy:
            return (ya, yas) if side == YES else (1 - yb, ybs)
        return (yb, ybs) if side == YES else (1 - ya, yas)

    def depth(self, k: int, row: int, side: int, buy: bool) -> Sequence[tuple[float, float]]:
        return ()

    def priced_by_trade(self, row: int) -> bool:
        return False


def core(rows: list[tuple[int, float, float, float, float]], **kw: object) -> TradingCore:
    return TradingCore([MarketSpec("A"), MarketSpec("B")], Rows(rows), CoreConfig(**kw))  # type: ignore[arg-type]


def test_a_fill_pays_ask_and_fee_and_the_position_carries_its_average_price() -> None:
    c = core([(0, 0.49, 0.50, 100, 100), (60 * S, 0.55, 0.60, 100, 100)])
    c.execute(0, 0, YES, True, D(10), NAN, {"why": "test"})
    c.execute(0, 1, YES, True, D(10), NAN, {})
    assert c.cash == D(10_000) - D(5) - D("0.18") - D(6) - D("0.17")
    assert c.position(0) == Position(D(20), D(0), D("0.55"), None)
    assert c.position(1) == Position()
    c.execute(0, 1, YES, False, D(5), NAN, {})  # FIFO: closes 5 of the 0.50 lot at the bid 0.55
    (e,) = c.portfolio.executions
    assert (e.size, e.entry_price, e.exit_price, e.exit_reason) == (D(5), D("0.50"), D("0.55"), "signal")
    assert c.position(0).yes_avg_price == (D(5) * D("0.50") + D(10) * D("0.60")) / D(15)


def test_settlement_cash_is_available_from_the_time_the_result_was_known() -> None:
    rows = [(0, 0.49, 0.50, 500, 500), (100 * S, 0.49, 0.50, 500, 500)]
    c = core(rows, initial_capital=D(10))
    c.schedule_settlement(0, 50 * S, D(1))
    c.execute(0, 0, YES, True, D(10), NAN, {})
    assert c.cash == D("4.82")
    c.advance(49 * S)
    assert c.cash == D("4.82")
    c.advance(50 * S)  # A settles YES: +10
    assert c.cash == D("14.82")
    assert c.position(0) == Position()
    c.execute(1, 1, YES, True, D(20), NAN, {})
    assert c.position(1).yes == D(20)
    c.execute(0, 1, YES, True, D(1), NAN, {})  # a settled market trades no more
    assert c.skipped == {"settled": 1}
    assert [e.exit_reason for e in c.portfolio.executions] == ["settlement"]


def test_cash_limits_a_buy_to_what_it_pays_for_fees_included() -> None:
    c = core([(0, 0.49, 0.50, 500, 500)], initial_capital=D(2))
    c.execute(0, 0, YES, True, D(10), NAN, {})
    assert c.position(0).yes == D(3)  # 3 × 0.50 + 0.06 ≤ 2 < 4 × 0.50 + 0.07
    assert c.cash == D("0.44")
    c = core([(0, 0.49, 0.50, 500, 500)], initial_capital=D(2), contract_step=D("0.01"))
    c.execute(0, 0, YES, True, D(10), NAN, {})
    # 3.86 × 0.50 = 1.93 + fee ceil(0.067550) = 0.07 → 2.00 fits; 3.87 → 1.935 + 0.07 = 2.005 does not.
    assert c.position(0).yes == D("3.86")
    assert c.cash == D(0)


def test_a_buy_the_cash_left_cannot_pay_for_is_refused_once_cash_falls_below_one_contract() -> None:
    # The float check before any Decimal work is skipped while cash covers a contract; it must apply again
    # once a fill leaves less than that, and again after a settlement pays out.
    rows = [(0, 0.49, 0.50, 500, 500), (10 * S, 0.49, 0.50, 500, 500), (100 * S, 0.49, 0.50, 500, 500)]
    c = core(rows, initial_capital=D("1.40"))
    c.schedule_settlement(0, 50 * S, D(1))
    c.execute(0, 0, YES, True, D(2), NAN, {})  # 2 × 0.50 + 0.04 → 0.36 left
    assert c.cash == D("0.36")
    c.execute(1, 1, YES, True, D(1), NAN, {})  # 0.50 + 0.02 > 0.36
    assert c.skipped == {"capital": 1}
    c.advance(50 * S)  # +2: 2.36
    c.execute(1, 2, YES, True, D(10), NAN, {})
    assert c.position(1).yes == D(4)  # 4 × 0.50 + 0.07 ≤ 2.36 < 5 × 0.50 + 0.09
    assert c.cash == D("0.29")


def test_signal_records_are_json_whatever_order_values_repeat_in() -> None:
    reasons = [
        {"move": -0.020000000000000018, "nan": NAN, "neg0": -0.0, "f32": np.float32(0.25), "flag": np.bool_(True)},
        {"move": -0.020000000000000018, "nan": NAN, "neg0": -0.0, "n": np.int64(3), "d": D("0.5"), "s": "x"},
    ]
    for _ in range(2):  # the second pass reads remembered roundings
        first, second = (signal_record(r) for r in reasons)
        assert first == {"move": -0.02, "nan": None, "neg0": 0.0, "f32": 0.25, "flag": True}
        assert second == {"move": -0.02, "nan": None, "neg0": 0.0, "n": 3, "d": "0.5", "s": "x"}
        assert math.copysign(1, first["neg0"]) == 1  # no "-0.0" in the JSON
        assert [type(v) for v in second.values()] == [float, type(None), float, int, str, str]


def test_latency_fills_queued_intents_on_the_first_snapshot_due() -> None:
    rows = [(0, 0.40, 0.42, 500, 500), (60 * S, 0.45, 0.47, 500, 500), (120 * S, 0.49, 0.50, 500, 500)]
    c = core(rows, fill_model=DisplayedLiquidity(latency_seconds=90))
    c.submit(0, 0, YES, True, D(10), NAN, {})
    c.fill_due(0, 1)
    assert c.fills == 0
    c.fill_due(1, 2)  # another market's snapshot fills nothing of market 0
    assert c.fills == 0
    c.fill_due(0, 2)
    assert (c.fills, c.position(0).yes_avg_price) == (1, D("0.50"))
    c.submit(0, 120 * S, YES, True, D(10), NAN, {})
    c.expire_pending()
    assert c.skipped == {"no_snapshot_after_latency": 1}


def test_consumption_is_per_recorded_book_side_and_resets_when_the_touch_moves() -> None:
    rows = [(0, 0.49, 0.50, 6, 8), (60 * S, 0.49, 0.50, 6, 8), (120 * S, 0.49, 0.51, 6, 8)]
    c = core(rows)
    c.execute(0, 0, YES, True, D(5), NAN, {})
    c.execute(0, 1, YES, True, D(5), NAN, {})  # the same 8 YES asks at 0.50: 3 left
    c.execute(0, 1, NO, True, D(5), NAN, {})  # NO asks are the YES bids: another book, untouched
    c.execute(0, 2, YES, True, D(5), NAN, {})  # the ask moved to 0.51: fresh
    fills = [(side, size) for _, _, side, size, _ in c.portfolio.events]
    assert fills == [(YES, 5.0), (YES, 3.0), (NO, 5.0), (YES, 5.0)]


def test_marks_are_unrealised_and_the_curve_ends_at_the_exact_equity() -> None:
    rows = [(0, 0.49, 0.50, 500, 500), (60 * S, 0.58, 0.60, 500, 500)]
    c = core(rows)
    c.execute(0, 0, YES, True, D(10), NAN, {})
    c.mark(0, YES, D("0.58"), 60 * S, "websocket")
    pf = c.portfolio
    assert (pf.cash, pf.mark_value, pf.equity) == (D("9994.82"), D("5.80"), D("10000.62"))
    assert (pf.realised, pf.unrealised) == (D(0), D("0.62"))
    tape = MarkTape(np.array([0, 2, 2]), np.array([0, 60 * S]), np.array([0.49, 0.58]), np.array([0.50, 0.40]))
    curve = equity_curve(
        pf.events, 10_000.0, tape, start_us=-60 * S, end_us=60 * S, first_data_us=0, interval_seconds=60
    )
    assert curve.ts_us.tolist() == [-60 * S, 0, 60 * S]
    assert curve.equity.tolist() == [10_000.0, 10_000 - 5.18 + 4.9, 10_000 - 5.18 + 5.8]
    assert curve.on_grid.tolist() == [False, True, True]
    assert curve.exposure_seconds == 60.0


def test_series_fees_follow_the_market() -> None:
    rows = [(0, 0.49, 0.50, 500, 500)]
    c = TradingCore([MarketSpec("A", SeriesFees("quadratic", D("0.5")))], Rows(rows), CoreConfig())
    c.execute(0, 0, YES, True, D(100), NAN, {})
    assert c.portfolio.fees == D("0.88")  # 0.07 × 0.5 × 100 × 0.25 = 0.875


def test_a_very_long_span_is_sampled_more_coarsely_and_says_so() -> None:
    tape = MarkTape(np.array([0, 1, 1]), np.array([0]), np.array([0.5]), np.array([0.5]))
    year = 365 * 86_400 * S
    curve = equity_curve([], 100.0, tape, start_us=0, end_us=4 * year, first_data_us=0, interval_seconds=1)
    assert len(curve.ts_us) <= 1_000_002
    assert curve.interval_seconds == pytest.approx(4 * 365 * 86_400 / 1_000_000)
