"""The equity curve, sampled: a vectorised kernel over the portfolio's event log (floats, numpy).

Equity = cash + every open position valued at the last recorded bid of its side (0 before any bid). It is
sampled at

- the window's start, where it is the initial capital (before anything at that instant);
- every multiple of ``interval`` (UTC-aligned; one minute of data time by default) from the first snapshot to
  the curve's end — the regular grid returns are measured on (:mod:`.metrics`); a span of more than
  :data:`MAX_SAMPLES` intervals is sampled more coarsely, and the curve says which interval it used;
- every fill and every settlement, so a drawdown between two grid points is not missed;
- the curve's end: the window's end, or the last snapshot or settlement when they come earlier.

Cost: vectorised over all positions (a merge of each holding segment's events with the samples inside it), and
per traded market one binary search of its rows for those samples — nothing per snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MAX_SAMPLES = 1_000_000  # regular samples per curve: a minute each over 1.9 years


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
    """The last finite ``bid`` recorded at or before each time of ``at`` (0 before the first). A binary search for
    the points; the market's rows are scanned for quoted ones only when a point falls on an unquoted row."""
    r = np.searchsorted(rows_t, at, side="right") - 1
    px = np.where(r >= 0, bid[np.maximum(r, 0)], 0.0)
    gap = ~np.isfinite(px)
    if gap.any():
        quoted = np.flatnonzero(np.isfinite(bid))
        q = np.searchsorted(quoted, r[gap], side="right") - 1
        px[gap] = np.where(q >= 0, bid[quoted[np.maximum(q, 0)]] if len(quoted) else 0.0, 0.0)
    return px


def _union_seconds(starts: IntArray, ends: IntArray) -> float:
    if len(starts) == 0:
        return 0.0
    o = np.argsort(starts, kind="stable")
    s, e = starts[o], ends[o]
    reach = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] > reach[:-1]]
    last = np.r_[np.flatnonzero(new)[1:] - 1, len(s) - 1]
    return float(np.sum(reach[last] - s[new])) / 1e6


def _expand(lo: IntArray, hi: IntArray) -> tuple[IntArray, IntArray]:
    """Every index of the ranges [lo, hi) and the range each comes from, without a Python loop."""
    n = hi - lo
    total = int(n.sum())
    owner = np.repeat(np.arange(len(n)), n)
    return np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(total), owner


def _holdings(
    points: IntArray, ev: FloatArray, ev_t: IntArray, tape: MarkTape, end_us: int
) -> tuple[FloatArray, float]:
    """Value of the open positions at each point, and the time any position was open (seconds).

    All positions at once: the events grouped by (market, side) give holding segments [open, close); the sample
    points inside each segment are merged with that segment's events to find the holding at each point; only the
    bid lookup goes market by market (a binary search over that market's rows)."""
    value = np.zeros(len(points))
    if not len(ev):
        return value, 0.0
    keys = ev[:, 1].astype(np.int64) * 4 + ev[:, 2].astype(np.int64)
    o = np.argsort(keys, kind="stable")  # grouped by (market, side), each group in time order
    keys, ev_t = keys[o], ev_t[o]
    delta = np.round(ev[o, 3] * 1e6).astype(np.int64)  # micro-contracts: integer sums are exact
    first = np.r_[True, keys[1:] != keys[:-1]]
    total = np.cumsum(delta)
    group_start = np.flatnonzero(first)
    base = np.r_[0, total[group_start[1:] - 1]]
    held = total - np.repeat(base, np.diff(np.r_[group_start, len(keys)]))
    is_open = held > 0
    was_open = np.r_[False, is_open[:-1]] & ~first
    opens = np.flatnonzero(is_open & ~was_open)
    closes = np.flatnonzero(~is_open & was_open)
    # Each segment closes at the next close of its own group, or stays open to the end.
    next_group = np.r_[group_start[1:], len(keys)][np.searchsorted(group_start, opens, side="right") - 1]
    c = np.searchsorted(closes, opens)
    close_at = np.r_[closes, len(keys)][c]  # past the last close: none
    closed = close_at < next_group
    never = int(np.iinfo(np.int64).max)
    seg_t0 = ev_t[opens]
    seg_t1 = np.where(closed, ev_t[np.minimum(close_at, len(keys) - 1)], never)
    exposure = _union_seconds(seg_t0, np.minimum(seg_t1, end_us))
    # The points inside each segment, and the segment's events before its close.
    at, p_seg = _expand(np.searchsorted(points, seg_t0, side="left"), np.searchsorted(points, seg_t1, side="left"))
    if not len(at):
        return value, exposure
    ev_idx, e_seg = _expand(opens, np.where(closed, close_at, next_group))
    # Merge them by (segment, time), events first at equal times; a point's holding is its last event's. Sorted
    # on one integer key — (segment, rank of the time among the points, kind) — several times faster than lexsort
    # on the three: an event time that is no point shares the rank of the next point and sorts before it, and
    # events of a segment keep their time order (a stable sort; they come in time order).
    seg = np.r_[e_seg, p_seg].astype(np.int64)
    t = np.r_[ev_t[ev_idx], points[at]]
    kind = np.r_[np.zeros(len(ev_idx), np.int64), np.ones(len(at), np.int64)]
    rank = np.searchsorted(points, t, side="left")
    order = np.argsort((seg * (len(points) + 1) + rank) * 2 + kind, kind="stable")
    src = np.r_[ev_idx, np.full(len(at), -1)][order]
    last_event = np.maximum.accumulate(np.where(src >= 0, np.arange(len(src)), 0))
    is_point = kind[order] == 1
    point_pos = order[is_point] - len(ev_idx)  # which expanded point each merged point row is
    h = np.empty(len(at))
    h[point_pos] = held[src[last_event[is_point]]] / 1e6
    # The bid of each point's market and side.
    p_key = keys[opens][p_seg]
    px = np.zeros(len(at))
    by_market = np.argsort(p_key // 4, kind="stable")
    markets = p_key[by_market] // 4
    cuts = np.flatnonzero(np.r_[True, markets[1:] != markets[:-1], True])
    for lo, hi in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        k = int(markets[lo])
        sel = by_market[lo:hi]
        a, b = int(tape.offsets[k]), int(tape.offsets[k + 1])
        yes = p_key[sel] % 4 == 1
        for side_sel, col in ((sel[yes], tape.yes_bid), (sel[~yes], tape.no_bid)):
            if len(side_sel):
                px[side_sel] = _last_bid(col[a:b], tape.ts_us[a:b], points[at[side_sel]])
    value += np.bincount(at, weights=h * px, minlength=len(points))
    return value, exposure


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
