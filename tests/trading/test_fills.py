"""The default fill model on its own: levels, limits, consumption, the cap where no size was recorded."""

from __future__ import annotations

from decimal import Decimal as D

from kalshi_analytics.trading.fills import DisplayedLiquidity, Fill, Level, levels_beyond_touch

MODEL = DisplayedLiquidity()
NOTHING_TAKEN = lambda p: D(0)  # noqa: E731


def test_walks_levels_best_first_until_the_order_is_filled() -> None:
    levels = [Level(D("0.50"), D(5)), Level(D("0.51"), D(25)), Level(D("0.52"), D(40))]
    fill = MODEL.fill(levels, D(20), buy=True, limit=None, step=D(1), taken=NOTHING_TAKEN)
    assert fill == Fill(((D("0.50"), D(5)), (D("0.51"), D(15))), D(20))
    assert fill.contracts == D(20)


def test_a_limit_stops_the_walk_and_sells_walk_downwards() -> None:
    asks = [Level(D("0.50"), D(5)), Level(D("0.51"), D(25))]
    assert MODEL.fill(asks, D(20), buy=True, limit=D("0.50"), step=D(1), taken=NOTHING_TAKEN).contracts == D(5)
    bids = [Level(D("0.49"), D(5)), Level(D("0.48"), D(25))]
    assert MODEL.fill(bids, D(20), buy=False, limit=D("0.485"), step=D(1), taken=NOTHING_TAKEN).contracts == D(5)
    assert MODEL.fill(bids, D(20), buy=False, limit=D("0.48"), step=D(1), taken=NOTHING_TAKEN).contracts == D(20)


def test_what_was_taken_is_not_available_again() -> None:
    levels = [Level(D("0.50"), D(8)), Level(D("0.51"), D(4))]
    taken = {D("0.50"): D(6), D("0.51"): D(4)}.get
    fill = MODEL.fill(levels, D(10), buy=True, limit=None, step=D(1), taken=lambda p: taken(p, D(0)))
    assert fill.parts == ((D("0.50"), D(2)),)


def test_unknown_sizes_are_capped_and_flagged_and_steps_round_down() -> None:
    fill = MODEL.fill([Level(D("0.50"), None)], D(250), buy=True, limit=None, step=D(1), taken=NOTHING_TAKEN)
    assert (fill.contracts, fill.size_unknown) == (D(100), True)
    small = DisplayedLiquidity(unknown_size_cap=D("2.5"))
    fill = small.fill([Level(D("0.50"), None)], D(10), buy=True, limit=None, step=D(1), taken=NOTHING_TAKEN)
    assert fill.contracts == D(2)
    touch_only = DisplayedLiquidity(walks_book=False)
    levels = [Level(D("0.50"), D(5)), Level(D("0.51"), D(25))]
    assert touch_only.fill(levels, D(20), buy=True, limit=None, step=D(1), taken=NOTHING_TAKEN).contracts == D(5)


def test_book_levels_in_the_traded_contracts_prices() -> None:
    yes_bids = [(0.47, 30.0), (0.48, 20.0), (0.49, 10.0)]  # ascending, as Kalshi sends them
    no_bids = [(0.48, 40.0), (0.49, 25.0), (0.50, 5.0)]
    beyond = levels_beyond_touch(yes_bids, no_bids, side=1, buy=True, touch=0.50)  # YES asks = 1 − NO bids
    assert [(round(p, 4), s) for p, s in beyond] == [(0.51, 25.0), (0.52, 40.0)]
    assert levels_beyond_touch(yes_bids, no_bids, side=1, buy=False, touch=0.49) == [(0.48, 20.0), (0.47, 30.0)]
    beyond = levels_beyond_touch(yes_bids, no_bids, side=2, buy=True, touch=0.51)  # NO asks = 1 − YES bids
    assert [(round(p, 4), s) for p, s in beyond] == [(0.52, 20.0), (0.53, 30.0)]
    assert levels_beyond_touch(yes_bids, no_bids, side=2, buy=False, touch=0.50) == [(0.49, 25.0), (0.48, 40.0)]
    assert levels_beyond_touch(yes_bids, no_bids, side=1, buy=True, touch=0.49) == []  # stale: not the touch
    assert levels_beyond_touch([], no_bids, side=2, buy=True, touch=0.51) == []
