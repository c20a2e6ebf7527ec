"""The built-in strategies. Each has a per-event hook and an equivalent causal vectorised ``signals``.

Prices are the YES mid ``(yes_bid + yes_ask) / 2`` unless said otherwise; sizes are contracts per entry.
The per-event hooks recompute exactly what ``signals`` computes for the current row (same float operations),
so both paths make the same decisions; ``tests/strategies`` checks that for every built-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

import numpy as np
from pydantic import Field

from kalshi_analytics.strategies.base import (
    FloatArray,
    MarketArrays,
    MarketView,
    OrderIntent,
    Position,
    Side,
    SignalArrays,
    Strategy,
    StrategyParams,
)
from kalshi_analytics.strategies.registry import register

NONE, YES, NO = 0, 1, 2
_SIDE: dict[int, Side] = {YES: "yes", NO: "no"}


def _dec(x: float) -> Decimal:
    return Decimal(str(x))


# Prices lie on a 0.0001 grid (mids on 0.00005): a move rounded to 9 places is the move in prices, without the
# float noise that makes 0.50 − 0.48 exceed 0.02 while 0.30 − 0.28 falls short of it. Both paths round alike.
_MOVE_DECIMALS = 9


def _moves(p: FloatArray, lookback: int) -> FloatArray:
    out = np.full(len(p), np.nan)
    if len(p) > lookback:
        out[lookback:] = np.round(p[lookback:] - p[:-lookback], _MOVE_DECIMALS)
    return out


def _fresh(cond: np.ndarray) -> np.ndarray:
    """True where ``cond`` becomes true (it was false, or absent, one row earlier)."""
    out = cond.copy()
    out[1:] &= ~cond[:-1]
    return out


def _move_at(p: FloatArray, j: int, lookback: int) -> float:
    return float(np.round(p[j] - p[j - lookback], _MOVE_DECIMALS)) if j >= lookback else float("nan")


def _cross_side(p: FloatArray, j: int, lookback: int, threshold: float, follow: bool) -> int:
    """The side a move-threshold strategy enters at row ``j`` (0 = none); uses rows ≤ j only."""
    if j < 0:
        return NONE
    m = _move_at(p, j, lookback)
    prev = _move_at(p, j - 1, lookback) if j >= 1 else float("nan")
    up = m > threshold and not prev > threshold
    down = m < -threshold and not prev < -threshold
    if up:
        return YES if follow else NO
    if down:
        return NO if follow else YES
    return NONE


def _cross_signals(p: FloatArray, lookback: int, threshold: float, follow: bool) -> tuple[np.ndarray, FloatArray]:
    move = _moves(p, lookback)
    with np.errstate(invalid="ignore"):
        up = _fresh(move > threshold)
        down = _fresh(move < -threshold)
    side = np.zeros(len(p), np.int8)
    side[up] = YES if follow else NO
    side[down] = NO if follow else YES
    return side, move


class _MoveParams(StrategyParams):
    lookback: int = Field(10, ge=1, le=10_000, description="Snapshots over which the move is measured.")
    threshold: float = Field(0.10, gt=0, lt=1, description="Move of the YES mid (dollars) that triggers.")
    size: float = Field(10, gt=0, description="Contracts per entry.")
    hold: int = Field(30, ge=0, description="Snapshots to hold before selling; 0 = hold to settlement.")


class _MoveStrategy(Strategy):
    follow: bool = False
    causal_signals = True  # proven by tests/strategies/test_causality.py
    Params = _MoveParams

    def on_event(self, view: MarketView, position: Position, params: _MoveParams) -> Sequence[OrderIntent]:
        # Only the rows the rule reads: O(lookback + hold) per event, whatever the history's length.
        p = view.tail_mid(params.hold + params.lookback + 2)
        i = len(p) - 1
        out: list[OrderIntent] = []
        if params.hold > 0:
            s = _cross_side(p, i - params.hold, params.lookback, params.threshold, self.follow)
            if s != NONE:
                out.append(
                    OrderIntent(_SIDE[s], "sell", _dec(params.size), reason={"exit": "hold", "held": params.hold})
                )
        s = _cross_side(p, i, params.lookback, params.threshold, self.follow)
        if s != NONE:
            out.append(
                OrderIntent(_SIDE[s], "buy", _dec(params.size), reason={"move": _move_at(p, i, params.lookback)})
            )
        return out

    def signals(self, arrays: MarketArrays, params: _MoveParams) -> list[SignalArrays]:
        side, move = _cross_signals(arrays.mid, params.lookback, params.threshold, self.follow)
        result: list[SignalArrays] = []
        if params.hold > 0:
            exit_side = np.zeros(len(side), np.int8)
            exit_side[params.hold :] = side[: len(side) - params.hold] if params.hold < len(side) else 0
            ex = SignalArrays.where(exit_side != 0, exit_side, "sell", params.size, reason_name="exit")
            result.append(ex)
        result.append(SignalArrays.where(side != 0, side, "buy", params.size, reason={"move": move}))
        return result


@register
class FadeOverreaction(_MoveStrategy):
    """Fade a move of the YES mid beyond ``threshold`` within ``lookback`` snapshots (buy the other side)."""

    name = "fade_overreaction"
    version = "1"
    description = "Fade a price spike: after a rise beyond the threshold buy NO, after a fall buy YES."
    follow = False


@register
class Momentum(_MoveStrategy):
    """Follow a move beyond ``threshold`` within ``lookback`` snapshots (trend)."""

    name = "momentum"
    version = "1"
    description = "Trend following: after a rise beyond the threshold buy YES, after a fall buy NO."
    follow = True


class MeanReversionParams(StrategyParams):
    window: int = Field(30, ge=2, le=100_000, description="Snapshots in the moving average (current included).")
    band: float = Field(0.05, gt=0, lt=1, description="Distance below/above the average that triggers an entry.")
    size: float = Field(10, gt=0, description="Contracts per entry.")


def _rolling_mean(p: FloatArray, window: int) -> FloatArray:
    out = np.full(len(p), np.nan)
    if len(p) >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(p, window).mean(axis=1)
    return np.round(out, 9)


@register
class MeanReversion(Strategy):
    """Buy YES when the mid is ``band`` below its moving average, NO when above; exit back at the average."""

    name = "mean_reversion"
    causal_signals = True  # proven by tests/strategies/test_causality.py
    version = "1"
    description = "Mean reversion to a moving average of the YES mid; exits when the mid crosses back."
    Params = MeanReversionParams

    def on_event(self, view: MarketView, position: Position, params: MeanReversionParams) -> Sequence[OrderIntent]:
        if len(view) < params.window:
            return []
        p = view.tail_mid(params.window)
        ma = float(
            np.round(np.lib.stride_tricks.sliding_window_view(p[-params.window :], params.window).mean(axis=1)[0], 9)
        )
        x = float(p[-1])
        size = _dec(params.size)
        out: list[OrderIntent] = []
        if x >= ma:
            out.append(OrderIntent("yes", "sell", size, reason={"ma": ma}))
        if x <= ma:
            out.append(OrderIntent("no", "sell", size, reason={"ma": ma}))
        if x < np.round(ma - params.band, 9):
            out.append(OrderIntent("yes", "buy", size, reason={"ma": ma}))
        if x > np.round(ma + params.band, 9):
            out.append(OrderIntent("no", "buy", size, reason={"ma": ma}))
        return out

    def signals(self, arrays: MarketArrays, params: MeanReversionParams) -> list[SignalArrays]:
        p = arrays.mid
        ma = _rolling_mean(p, params.window)
        r = {"ma": ma}
        with np.errstate(invalid="ignore"):
            return [
                SignalArrays.where(p >= ma, "yes", "sell", params.size, reason=r),
                SignalArrays.where(p <= ma, "no", "sell", params.size, reason=r),
                SignalArrays.where(p < np.round(ma - params.band, 9), "yes", "buy", params.size, reason=r),
                SignalArrays.where(p > np.round(ma + params.band, 9), "no", "buy", params.size, reason=r),
            ]


class FavouriteLongshotParams(StrategyParams):
    minutes_before_close: float = Field(60, gt=0, description="Enter at the first snapshot this close to the close.")
    favourite: float = Field(0.80, gt=0.5, lt=1, description="YES mid at or above which YES is the favourite.")
    longshot: float = Field(0.20, gt=0, lt=0.5, description="YES mid at or below which YES is a longshot (buy NO).")
    size: float = Field(10, gt=0)


@register
class FavouriteLongshot(Strategy):
    """The favourite–longshot bias near the close: buy the favourite, sell (buy NO on) the longshot; hold."""

    name = "favourite_longshot"
    causal_signals = True  # proven by tests/strategies/test_causality.py
    version = "1"
    description = "Near the close, back favourites and lay longshots; hold to settlement."
    Params = FavouriteLongshotParams

    @staticmethod
    def _side(x: float, params: FavouriteLongshotParams) -> int:
        if x >= params.favourite:
            return YES
        if x <= params.longshot:
            return NO
        return NONE

    def on_event(self, view: MarketView, position: Position, params: FavouriteLongshotParams) -> Sequence[OrderIntent]:
        # The first snapshot inside the window, each judged by the close time known at it: a close moved earlier
        # opens the window when it is announced, not before.
        ts, close = view.tail("ts", 2), view.tail("close_time", 2)
        with np.errstate(invalid="ignore"):
            inside = ts >= close - params.minutes_before_close * 60
        if not inside[-1] or (len(inside) > 1 and inside[-2]):
            return []
        x = float(view.tail_mid(1)[0])
        s = self._side(x, params)
        if s == NONE:
            return []
        return [OrderIntent(_SIDE[s], "buy", _dec(params.size), reason={"mid": x})]

    def signals(self, arrays: MarketArrays, params: FavouriteLongshotParams) -> list[SignalArrays]:
        p = arrays.mid
        with np.errstate(invalid="ignore"):  # NaN close (none known yet): not inside
            first = _fresh(arrays["ts"] >= arrays.close_time - params.minutes_before_close * 60)
        with np.errstate(invalid="ignore"):
            side = np.where(p >= params.favourite, YES, np.where(p <= params.longshot, NO, NONE)).astype(np.int8)
        return [SignalArrays.where(first & (side != 0), side, "buy", params.size, reason={"mid": p})]


class BuyAndHoldParams(StrategyParams):
    side: Literal["yes", "no"] = "yes"
    size: float = Field(10, gt=0)


@register
class BuyAndHold(Strategy):
    """The baseline: buy ``size`` contracts of ``side`` at the first quoted ask and hold to settlement."""

    name = "buy_and_hold"
    causal_signals = True  # proven by tests/strategies/test_causality.py
    version = "1"
    description = "Baseline: buy at the first quoted ask, hold to settlement."
    Params = BuyAndHoldParams

    def on_event(self, view: MarketView, position: Position, params: BuyAndHoldParams) -> Sequence[OrderIntent]:
        ask = view["yes_ask" if params.side == "yes" else "no_ask"]
        if not np.isfinite(ask[-1]) or np.isfinite(ask[:-1]).any():
            return []
        return [OrderIntent(params.side, "buy", _dec(params.size), reason={"first_quote": True})]

    def signals(self, arrays: MarketArrays, params: BuyAndHoldParams) -> list[SignalArrays]:
        ask = arrays["yes_ask" if params.side == "yes" else "no_ask"]
        first = _fresh(np.isfinite(ask))
        first &= np.cumsum(np.isfinite(ask)) == 1
        return [SignalArrays.where(first, params.side, "buy", params.size)]
