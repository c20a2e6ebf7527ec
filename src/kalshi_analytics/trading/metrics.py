"""Performance metrics of a run: money in Decimal (as text), ratios as floats.

- Returns are simple returns between consecutive regular samples of the equity curve (every ``interval``, one
  minute of data time by default, from the first snapshot to the curve's end). Prediction markets trade every day
  around the clock, so a year is 365 × 24 h and the annualisation factor is √(seconds per year / interval).
  The last interval may be shorter than the others: returns are weighted by their length (mean return per unit
  of time μ = Σr / Σd, variance per unit of time σ² = Σ(r − μd)²/d / (N − 1)), so a partial last interval counts
  for what it is, not as a full one. Sharpe = μ/σ (risk-free rate 0); Sortino = μ/σ₋ with the downside deviation
  σ₋² = Σ min(r, 0)²/d / N. With equal intervals these are the textbook mean/std × √(periods per year).
- Max drawdown over every point of the curve (grid, fills, settlements): the largest fall from a running peak, in
  dollars and as a share of that peak; its duration is the longest time spent below a peak (from the time of the
  peak to the recovery, or to the curve's end if it never recovered).
- Exposure: the time during which any position was open, as seconds and as a share of the sampled span.
- Win rate and profit factor count realised trades (closed by a signal or settled); marked positions are open.
- Brier score and calibration use the price paid for each entry as the forecast of its side winning, against the
  realised outcome (resolved markets only), weighted by contracts.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from kalshi_analytics.trading.equity import EquityCurve, FloatArray
from kalshi_analytics.trading.portfolio import utc
from kalshi_analytics.trading.result import TradingResult

CALIBRATION_BUCKETS = 10
SECONDS_PER_YEAR = 365 * 86_400
_UNDER = 1e-7  # dollars: below a peak by less than this is float noise, not a drawdown


def _f(x: float | None) -> float | None:
    return None if (x is None or math.isnan(x) or math.isinf(x)) else float(x)


def grid_returns(curve: EquityCurve) -> tuple[FloatArray, FloatArray]:
    """Simple returns between consecutive regular samples and the length of each interval in years."""
    eq = curve.equity[curve.on_grid]
    ts = curve.ts_us[curve.on_grid]
    if len(eq) < 2:
        return np.zeros(0), np.zeros(0)
    d = np.diff(ts) / 1e6 / SECONDS_PER_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        r = eq[1:] / eq[:-1] - 1
    ok = (d > 0) & np.isfinite(r)
    return r[ok], d[ok]


def sharpe_sortino(r: FloatArray, d: FloatArray) -> tuple[float | None, float | None]:
    """Annualised Sharpe and Sortino ratios of returns ``r`` over intervals ``d`` (years); see the module docstring."""
    n = len(r)
    if n < 2:
        return None, None
    mu = float(r.sum() / d.sum())
    var = float(np.sum((r - mu * d) ** 2 / d)) / (n - 1)
    down = float(np.sum(np.minimum(r, 0.0) ** 2 / d)) / n
    sharpe = mu / math.sqrt(var) if var > 0 else None
    sortino = mu / math.sqrt(down) if down > 0 else None
    return _f(sharpe), _f(sortino)


def drawdown(curve: EquityCurve) -> dict[str, Any]:
    """Max drawdown amount, percent of the peak, when (peak, trough) and the longest time under water."""
    eq, ts = curve.equity, curve.ts_us
    out: dict[str, Any] = {
        "max_drawdown": 0.0,
        "max_drawdown_pct": 0.0,
        "max_drawdown_seconds": 0.0,
        "max_drawdown_days": 0.0,
        "max_drawdown_peak_ts": None,
        "max_drawdown_trough_ts": None,
    }
    if len(eq) < 2:
        return out
    peak = np.maximum.accumulate(eq)
    dd = peak - eq
    under = dd > _UNDER
    if not under.any():
        return out
    trough = int(np.argmax(dd))
    at_peak = np.maximum.accumulate(np.where(~under, np.arange(len(eq)), 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(peak > 0, dd / peak, 0.0)
    # Each stretch under water runs from its peak's time to the first point back at (or above) it, or the end.
    prev = np.r_[False, under[:-1]]
    starts = np.flatnonzero(under & ~prev)
    ends = np.flatnonzero(~under & prev)
    end_t = ts[ends]
    if len(ends) < len(starts):
        end_t = np.r_[end_t, ts[-1]]
    longest = float(np.max(end_t - ts[at_peak[starts]])) / 1e6
    out.update(
        max_drawdown=round(float(dd[trough]), 4),
        max_drawdown_pct=round(float(np.max(pct)) * 100, 4),
        max_drawdown_seconds=round(longest, 3),
        max_drawdown_days=round(longest / 86_400, 6),
        max_drawdown_peak_ts=_iso(int(ts[at_peak[trough]])),
        max_drawdown_trough_ts=_iso(int(ts[trough])),
    )
    return out


def _iso(ts_us: int) -> str:
    return utc(ts_us).isoformat()


def compute_metrics(res: TradingResult) -> dict[str, Any]:
    ex = res.executions
    realised = [e for e in ex if e.exit_reason != "marked" and e.pnl is not None]
    pnls = [e.pnl for e in realised if e.pnl is not None]
    gross_profit = sum((p for p in pnls if p > 0), Decimal(0))
    gross_loss = -sum((p for p in pnls if p < 0), Decimal(0))
    wins = sum(1 for p in pnls if p > 0)
    curve = res.curve
    r, d = grid_returns(curve)
    sharpe, sortino = sharpe_sortino(r, d)
    max_cost = max((e.size * e.entry_price for e in ex), default=Decimal(0))
    brier, calibration = brier_and_calibration(res)
    span = curve.span_seconds
    return {
        "total_pnl": str(res.total_pnl),
        "realised_pnl": str(res.realised_pnl),
        "unrealised_pnl": str(res.unrealised_pnl),
        "return_pct": float(res.total_pnl / res.initial_capital * 100) if res.initial_capital else None,
        "final_equity": str(res.final_equity),
        "final_cash": str(res.final_cash),
        "sharpe": sharpe,
        "sortino": sortino,
        "annualisation": {
            "year": "365 days x 24 h (markets trade every day, around the clock)",
            "interval_seconds": curve.interval_seconds,
            "periods_per_year": SECONDS_PER_YEAR / curve.interval_seconds,
            "factor": math.sqrt(SECONDS_PER_YEAR / curve.interval_seconds),
            "returns": len(r),
            "risk_free_rate": 0.0,
        },
        **drawdown(curve),
        "win_rate": wins / len(pnls) if pnls else None,
        "num_trades": len(ex),
        "num_realised_trades": len(realised),
        "num_fills": res.fills,
        "fees_paid": str(res.fees_paid),
        "exposure_seconds": round(curve.exposure_seconds, 3),
        "exposure_time": round(curve.exposure_seconds / span, 6) if span > 0 else 0.0,
        "largest_position_cost": str(max_cost),
        "gross_profit": str(gross_profit),
        "gross_loss": str(gross_loss),
        "profit_factor": float(gross_profit / gross_loss) if gross_loss > 0 else None,
        "brier_score": brier,
        "calibration": calibration,
        "unresolved_markets": res.unresolved_markets,
        "size_unknown_fills": res.size_unknown_fills,
        "trade_priced_fills": res.trade_priced_fills,
        "flags": res.flags,
        "settlement_time_assumed": res.settlement_time_assumed,
        "fill_model": res.fill_model,
        "fee_model": res.fee_model,
        "skipped_intents": res.skipped,
    }


def brier_and_calibration(res: TradingResult) -> tuple[float | None, list[dict[str, Any]]]:
    pairs = [(float(e.entry_price), e.outcome, float(e.size)) for e in res.executions if e.outcome is not None]
    if not pairs:
        return None, []
    p = np.array([x[0] for x in pairs])
    o = np.array([x[1] for x in pairs], dtype=np.float64)
    w = np.array([x[2] for x in pairs])
    brier = float(np.sum(w * (p - o) ** 2) / np.sum(w))
    table: list[dict[str, Any]] = []
    b = np.minimum((p * CALIBRATION_BUCKETS).astype(int), CALIBRATION_BUCKETS - 1)
    for i in range(CALIBRATION_BUCKETS):
        m = b == i
        if not m.any():
            continue
        table.append(
            {
                "bucket": f"{i / CALIBRATION_BUCKETS:.1f}-{(i + 1) / CALIBRATION_BUCKETS:.1f}",
                "trades": int(m.sum()),
                "contracts": float(w[m].sum()),
                "mean_price": float(np.average(p[m], weights=w[m])),
                "win_rate": float(np.average(o[m], weights=w[m])),
            }
        )
    return round(brier, 6), table
