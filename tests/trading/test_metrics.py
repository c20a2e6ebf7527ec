"""Sharpe, Sortino, drawdown and exposure of known curves, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kalshi_analytics.trading.equity import EquityCurve
from kalshi_analytics.trading.metrics import SECONDS_PER_YEAR, drawdown, grid_returns, sharpe_sortino

T0 = 1_767_614_400 * 1_000_000  # 2026-01-05T12:00Z in µs
MIN = 60_000_000


def curve(points: list[tuple[int, float, bool]], interval: float = 60.0) -> EquityCurve:
    ts = np.array([T0 + t for t, _, _ in points], np.int64)
    eq = np.array([e for _, e, _ in points])
    grid = np.array([g for _, _, g in points])
    span = (ts[-1] - ts[grid][0]) / 1e6
    return EquityCurve(ts, eq, grid, interval, 0.0, span)


# Window start (not a return sample), then the grid every minute: +10 %, −10 %, +10 %; a fill at 2.5 min dips
# to 95 between two grid samples.
KNOWN = curve(
    [
        (-5 * MIN, 100.0, False),
        (0, 100.0, True),
        (1 * MIN, 110.0, True),
        (2 * MIN, 99.0, True),
        (2 * MIN + MIN // 2, 95.0, False),
        (3 * MIN, 108.9, True),
    ]
)


def test_sharpe_and_sortino_of_a_known_curve() -> None:
    r, d = grid_returns(KNOWN)
    assert r == pytest.approx([0.1, -0.1, 0.1])
    # By hand: mean 1/30; deviations 1/15, −2/15, 1/15 → sample variance (1 + 4 + 1)/225/2 = 1/75;
    # mean/std = (1/30)·√75 = √3/6. Downside: √(0.1²/3) = 0.1/√3; mean/downside = √3/3.
    # Annualised with 365 × 24 h of one-minute periods: × √525,600.
    periods = 365 * 24 * 60
    sharpe, sortino = sharpe_sortino(r, d)
    assert sharpe == pytest.approx(math.sqrt(3) / 6 * math.sqrt(periods))  # ≈ 209.29
    assert sortino == pytest.approx(math.sqrt(3) / 3 * math.sqrt(periods))  # ≈ 418.58
    assert sharpe == pytest.approx(209.2848, abs=1e-3)


def test_drawdown_of_a_known_curve_counts_the_dip_between_grid_samples() -> None:
    dd = drawdown(KNOWN)
    # Peak 110 at 1 min; the fill at 2.5 min is the trough (95): 15 dollars, 15/110 of the peak; never recovered,
    # so under water from 1 min to the end at 3 min.
    assert dd["max_drawdown"] == 15.0
    assert dd["max_drawdown_pct"] == pytest.approx(100 * 15 / 110, abs=1e-4)
    assert dd["max_drawdown_seconds"] == 120.0
    assert dd["max_drawdown_days"] == pytest.approx(120 / 86_400, abs=1e-6)
    assert (dd["max_drawdown_peak_ts"], dd["max_drawdown_trough_ts"]) == (
        "2026-01-05T12:01:00+00:00",
        "2026-01-05T12:02:30+00:00",
    )


def test_drawdown_duration_is_the_longest_time_under_water_until_recovery() -> None:
    c = curve(
        [
            (0, 100.0, True),
            (1 * MIN, 90.0, True),  # under 100 from 0 …
            (2 * MIN, 100.0, True),  # … recovered at 2 min: 120 s, 10 deep
            (3 * MIN, 120.0, True),
            (4 * MIN, 116.0, True),  # under 120 from 3 min …
            (5 * MIN, 117.0, True),
            (6 * MIN, 118.0, True),
            (7 * MIN, 121.0, True),  # … recovered at 7 min: 240 s, only 4 deep
        ]
    )
    dd = drawdown(c)
    assert dd["max_drawdown"] == 10.0  # the deepest …
    assert dd["max_drawdown_seconds"] == 240.0  # … is not the longest
    assert dd["max_drawdown_pct"] == 10.0


def test_a_partial_last_interval_is_weighted_by_its_length_not_annualised_as_a_full_one() -> None:
    # Grid at 0, 60, 120 s and the curve's end at 150 s (half an interval): returns +1 %, −1 %, +1 %.
    c = curve([(0, 100.0, True), (MIN, 101.0, True), (2 * MIN, 99.99, True), (2 * MIN + MIN // 2, 100.9899, True)])
    r, d = grid_returns(c)
    assert r == pytest.approx([0.01, -0.01, 0.01])
    year = SECONDS_PER_YEAR
    d_hand = [60 / year, 60 / year, 30 / year]
    assert d == pytest.approx(d_hand)
    # By hand: μ = Σr/Σd = 0.01 / (150 s) per unit of time; σ² = Σ (r − μd)²/d / (N − 1).
    mu = 0.01 / (150 / year)
    var = sum((ri - mu * di) ** 2 / di for ri, di in zip([0.01, -0.01, 0.01], d_hand, strict=True)) / 2
    sharpe, sortino = sharpe_sortino(r, d)
    assert sharpe == pytest.approx(mu / math.sqrt(var))
    assert sortino == pytest.approx(mu / math.sqrt((0.01**2 / (60 / year)) / 3))
    assert sharpe == pytest.approx(216.148, abs=1e-3)
    # Counting the half interval as a full one would understate the rate it earned: another Sharpe (√3/6·√525,600).
    full = sharpe_sortino(r, np.full(3, 60 / year))[0]
    assert full == pytest.approx(209.285, abs=1e-3)


def test_a_last_partial_day_is_not_annualised_as_a_full_day() -> None:
    """Sampled daily, a run ending half-way through its third day: that half day earns its return over half a
    day's time, not a full one's."""
    day = 86_400 * 1_000_000
    c = curve(
        [(0, 100.0, True), (day, 101.0, True), (2 * day, 99.99, True), (2 * day + day // 2, 100.9899, True)],
        interval=86_400.0,
    )
    r, d = grid_returns(c)
    assert r == pytest.approx([0.01, -0.01, 0.01])
    assert d == pytest.approx([1 / 365, 1 / 365, 0.5 / 365])  # years: SECONDS_PER_YEAR is 365 days of 24 h
    # By hand: μ = Σr/Σd = 0.01 / (2.5/365) = 1.46 a year; r − μd = 0.006, −0.014, 0.008; Σ (r − μd)²/d =
    # 0.000036·365 + 0.000196·365 + 0.000064·730 = 0.01314 + 0.07154 + 0.04672 = 0.1314; σ² = 0.1314/2 = 0.0657;
    # Sharpe = 1.46/√0.0657 = 5.6961. Sortino: downside² = 0.01²·365/3 = 0.0121667 → 1.46/0.110303 = 13.2363.
    sharpe, sortino = sharpe_sortino(r, d)
    assert sharpe == pytest.approx(5.6961, abs=1e-4)
    assert sortino == pytest.approx(13.2363, abs=1e-4)
    # Counted as three full days the same returns give √3/6·√365 = 5.5151: the half day's rate understated.
    assert sharpe_sortino(r, np.full(3, 1 / 365))[0] == pytest.approx(5.5151, abs=1e-4)


def test_flat_and_tiny_curves_have_no_ratios() -> None:
    flat = curve([(0, 100.0, True), (MIN, 100.0, True), (2 * MIN, 100.0, True)])
    assert sharpe_sortino(*grid_returns(flat)) == (None, None)
    assert drawdown(flat)["max_drawdown"] == 0.0
    one = curve([(0, 100.0, True)])
    assert sharpe_sortino(*grid_returns(one)) == (None, None)
    rising = curve([(0, 100.0, True), (MIN, 101.0, True), (2 * MIN, 103.0, True)])
    sharpe, sortino = sharpe_sortino(*grid_returns(rising))
    assert sharpe is not None
    assert sharpe > 0
    assert sortino is None  # no downside at all: unbounded, reported as none
