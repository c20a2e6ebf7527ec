"""Performance metrics of a simulated run: money in Decimal, ratios as floats.

Sharpe and Sortino use daily returns of the equity curve annualised with √365 (these markets trade every day);
drawdown is measured on the same curve. Brier score and calibration use the price paid for each entry as the
forecast of its side winning, against the realised outcome (resolved markets only).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from kalshi_analytics.backtests.engine import SimulationResult

CALIBRATION_BUCKETS = 10


def _f(x: float) -> float | None:
    return None if (x is None or math.isnan(x) or math.isinf(x)) else float(x)


def compute_metrics(sim: SimulationResult) -> dict[str, Any]:
    ex = sim.executions
    pnls = [e.pnl for e in ex if e.pnl is not None]
    gross_profit = sum((p for p in pnls if p > 0), Decimal(0))
    gross_loss = -sum((p for p in pnls if p < 0), Decimal(0))
    wins = sum(1 for p in pnls if p > 0)
    eq = np.asarray(sim.equity, dtype=np.float64)
    rets = np.diff(eq) / eq[:-1] if len(eq) > 1 else np.zeros(0)
    sharpe = sortino = None
    if len(rets) > 1:
        sd = float(np.std(rets, ddof=1))
        if sd > 0:
            sharpe = _f(float(np.mean(rets)) / sd * math.sqrt(365))
        downside = rets[rets < 0]
        if len(downside) > 0:
            dd_sd = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)))
            if dd_sd > 0:
                sortino = _f(float(np.mean(rets)) / dd_sd * math.sqrt(365))
    max_dd = max_dd_pct = 0.0
    max_dd_days = 0.0
    if len(eq):
        peak = np.maximum.accumulate(eq)
        dd = peak - eq
        max_dd = float(dd.max())
        with np.errstate(divide="ignore", invalid="ignore"):
            max_dd_pct = float(np.nanmax(np.where(peak > 0, dd / peak, 0.0)))
        # Duration: longest stretch (in days, from the curve's timestamps) spent below a previous peak.
        ts = np.asarray(sim.equity_ts)
        under = dd > 1e-9
        start = None
        for i, u in enumerate(under):
            if u and start is None:
                start = i - 1 if i > 0 else i
            if (not u or i == len(under) - 1) and start is not None:
                end = i
                max_dd_days = max(max_dd_days, (ts[end] - ts[start]) / 86_400)
                start = None
    exposure_time = 0.0
    if ex and sim.snapshots and len(sim.equity_ts) > 1:
        span = float(sim.equity_ts[-1] - sim.equity_ts[0]) or 1.0
        covered = sum((e.exit_ts.timestamp() if e.exit_ts else sim.equity_ts[-1]) - e.entry_ts.timestamp() for e in ex)
        exposure_time = covered / span  # contract-lot time in market per unit of time (can exceed 1)
    max_cost = max((e.size * e.entry_price for e in ex), default=Decimal(0))
    brier, calibration = brier_and_calibration(sim)
    return {
        "total_pnl": str(sim.total_pnl),
        "return_pct": float(sim.total_pnl / sim.initial_capital * 100) if sim.initial_capital else None,
        "final_equity": str(sim.final_cash),
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": round(max_dd, 4),
        "max_drawdown_pct": round(max_dd_pct * 100, 4),
        "max_drawdown_days": round(max_dd_days, 4),
        "win_rate": wins / len(pnls) if pnls else None,
        "num_trades": len(ex),
        "num_fills": sim.fills,
        "fees_paid": str(sim.fees_paid),
        "exposure_time": round(exposure_time, 6),
        "largest_position_cost": str(max_cost),
        "gross_profit": str(gross_profit),
        "gross_loss": str(gross_loss),
        "profit_factor": float(gross_profit / gross_loss) if gross_loss > 0 else None,
        "brier_score": brier,
        "calibration": calibration,
        "unresolved_markets": sim.unresolved_markets,
        "markets": sim.markets,
        "snapshots": sim.snapshots,
        "skipped_intents": sim.skipped,
        "path": sim.path,
    }


def brier_and_calibration(sim: SimulationResult) -> tuple[float | None, list[dict[str, Any]]]:
    pairs = [(float(e.entry_price), e.outcome, float(e.size)) for e in sim.executions if e.outcome is not None]
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
