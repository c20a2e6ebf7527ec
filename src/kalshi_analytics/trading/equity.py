"""The equity curve, sampled: a vectorised kernel over the portfolio's event log (floats, numpy).

Equity = cash + every open position valued at the last recorded bid of its side (0 before any bid). It is
sampled at

- the window's start, where it is the initial capital (before anything at that instant);
- every multiple of ``interval`` (UTC-aligned; one minute of data time by default) from the first snapshot to
  the curve's end — the regular grid returns are measured on (:mod:`.metrics`); a span of more than
  :data:`MAX_SAMPLES` intervals is sampled more coarsely, and the curve says which interval it used;
- every fill and every settlement, so a drawdown between two grid points is not missed;
- the curve's end: the window's end, or the last snapshot or settlement when they come earlier.

Cost: per traded (market, side), two binary searches for each sample that falls while it is held — nothing per
snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MAX_SAMPLES = 1_000_000  # regular samples per curve: a minute each over 1.9 years
_EPS = 1e-9  # contracts: below this a float holding is flat (the Decimal ledger is exact)


@dataclass(frozen=True)
class MarkTape:
    """Bids to value positions with, grouped by market: market ``k`` is rows ``offsets[k]:offsets[k+1]``
    (time-ordered); NaN where no bid was recorded."""

    offsets: IntArray
    ts_us: IntArray
    yes_bid: FloatArray
    no_bid: FloatArray


@dataclass(frozen=True)
class EquityCurve:
    ts_us: IntArray  # non-decreasing; the first point is the window's start at the initial capital
    equity: FloatArray
    on_grid: npt.NDArray[np.bool_]  # the regular samples (and the end) that returns are measured on
    interval_seconds: float
    exposure_seconds: float  # time with any position open
    span_seconds: float  # from the first grid sample to the end (what exposure is a share of)

    @property
    def ts(self) -> FloatArray:
        """Unix seconds."""
        return self.ts_us / 1e6


def flat_curve(start_us: int, capital: float, interval_seconds: float) -> EquityCurve:
    return EquityCurve(
        np.array([start_us], np.int64), np.array([capital]), np.array([False]), interval_seconds, 0.0, 0.0
    )


def _last_bid(bid: FloatArray, rows_t: IntArray, at: IntArray) -> FloatArray:
    """The last finite ``bid`` recorded at or before each time of ``at`` (0 before the first): one pass over the
    market's rows to find its quoted ones, then binary searches for the few points."""
    quoted = np.flatnonzero(np.isfinite(bid))
    if len(quoted) == len(bid):
        r = np.searchsorted(rows_t, at, side="right") - 1
    else:
        r = np.searchsorted(rows_t[quoted], at, side="right") - 1
        r = np.where(r >= 0, quoted[np.maximum(r, 0)], -1)
    return np.where(r >= 0, bid[np.maximum(r, 0)], 0.0)


def _segments(times: IntArray, held: FloatArray) -> tuple[IntArray, IntArray]:
    """Intervals [open, close) during which the cumulative holding is positive; an open end is int64 max."""
    is_open = held > _EPS
    was_open = np.r_[False, is_open[:-1]]
    starts = np.flatnonzero(is_open & ~was_open)
    ends = np.flatnonzero(~is_open & was_open)
    end_t = times[ends]
    if len(ends) < len(starts):
        end_t = np.r_[end_t, np.iinfo(np.int64).max]
    return times[starts], end_t.astype(np.int64)


def _union_seconds(starts: IntArray, ends: IntArray) -> float:
    if len(starts) == 0:
        return 0.0
    o = np.argsort(starts, kind="stable")
    s, e = starts[o], ends[o]
    reach = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] > reach[:-1]]
    last = np.r_[np.flatnonzero(new)[1:] - 1, len(s) - 1]
    return float(np.sum(reach[last] - s[new])) / 1e6


def _holdings(
    points: IntArray, ev: FloatArray, ev_t: IntArray, tape: MarkTape, end_us: int
) -> tuple[FloatArray, float]:
    """Value of the open positions at each point, and the time any position was open (seconds)."""
    value = np.zeros(len(points))
    if not len(ev):
        return value, 0.0
    seg_starts: list[IntArray] = []
    seg_ends: list[IntArray] = []
    keys = ev[:, 1].astype(np.int64) * 4 + ev[:, 2].astype(np.int64)
    o = np.argsort(keys, kind="stable")  # grouped by (market, side), each group still in time order
    keys, ev, ev_t = keys[o], ev[o], ev_t[o]
    bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        k, side = divmod(int(keys[lo]), 4)
        t = ev_t[lo:hi]
        held = np.cumsum(ev[lo:hi, 3])
        s_t, e_t = _segments(t, held)
        seg_starts.append(s_t)
        seg_ends.append(np.minimum(e_t, end_us))
        # The sample points inside the holding segments: only there is this position worth anything.
        i0 = np.searchsorted(points, s_t, side="left")
        i1 = np.searchsorted(points, e_t, side="left")
        n = i1 - i0
        total = int(n.sum())
        if total == 0:
            continue
        at = np.repeat(i0 - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(total)
        p = points[at]
        h = held[np.searchsorted(t, p, side="right") - 1]
        a, b = int(tape.offsets[k]), int(tape.offsets[k + 1])
        px = _last_bid((tape.yes_bid if side == 1 else tape.no_bid)[a:b], tape.ts_us[a:b], p)
        value += np.bincount(at, weights=h * px, minlength=len(points))
    return value, _union_seconds(np.concatenate(seg_starts), np.concatenate(seg_ends))


def equity_curve(
    events: Sequence[tuple[int, int, int, float, float]],
    initial: float,
    tape: MarkTape,
    *,
    start_us: int,
    end_us: int,
    first_data_us: int,
    interval_seconds: float,
    final_equity: float | None = None,
) -> EquityCurve:
    """Sample equity over ``[start_us, end_us]`` (see the module docstring). ``events`` are the portfolio's
    ``(ts_us, k, side, Δcontracts, Δcash)``; ``final_equity``, when given, is the exact value of the last point
    (the ledger's Decimal, instead of the float sum)."""
    interval_us = max(1, round(interval_seconds * 1_000_000))
    # At most MAX_SAMPLES regular samples: a longer span is sampled more coarsely (the curve states its interval).
    interval_us = max(interval_us, -(-(end_us - first_data_us) // MAX_SAMPLES))
    g0 = max(first_data_us // interval_us * interval_us, start_us)
    grid = np.arange(g0, end_us + 1, interval_us, dtype=np.int64)
    if len(grid) == 0 or grid[-1] != end_us:
        grid = np.r_[grid, np.int64(end_us)]
    if events:
        ev = np.array(events, dtype=np.float64)
        ev_t = np.array([e[0] for e in events], dtype=np.int64)
        o = np.argsort(ev_t, kind="stable")
        ev, ev_t = ev[o], ev_t[o]
        points = np.union1d(grid, ev_t[(ev_t >= start_us) & (ev_t <= end_us)])
    else:
        ev = np.zeros((0, 5))
        ev_t = np.zeros(0, np.int64)
        points = grid
    # Cash: the initial capital plus every change up to and including each point.
    idx = np.searchsorted(ev_t, points, side="right") - 1
    cum_cash = np.cumsum(ev[:, 4]) if len(ev) else np.zeros(0)
    cash = initial + np.where(idx >= 0, cum_cash[np.maximum(idx, 0)] if len(ev) else 0.0, 0.0)
    value, exposure = _holdings(points, ev, ev_t, tape, end_us)
    equity = cash + value
    on_grid = np.isin(points, grid)
    # The first point: the window's start at the initial capital, before anything that happens at that instant.
    ts = np.r_[np.int64(start_us), points]
    eq = np.r_[initial, equity]
    grid_mask = np.r_[False, on_grid]
    if len(points) and points[0] == start_us and equity[0] == initial:
        ts, eq, grid_mask = ts[1:], eq[1:], grid_mask[1:]
    if final_equity is not None:
        eq[-1] = final_equity
    span = (end_us - int(grid[0])) / 1e6
    return EquityCurve(ts, eq, grid_mask, interval_us / 1e6, min(exposure, span), span)
